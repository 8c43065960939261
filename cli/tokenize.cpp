// thalamus tokenize: text to ids and back with a tokenizer.json.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "models/tokenizer.h"

namespace thalamus::cli {

std::vector<int32_t> ParseIdList(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" \t", used) != std::string::npos || value < INT32_MIN ||
        value > INT32_MAX) {
      throw std::invalid_argument("'" + item + "' in the id list is not an integer id");
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  if (ids.empty()) throw std::invalid_argument("the id list is empty");
  return ids;
}

int RunTokenize(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus tokenize: encode text to ids (JSON) or decode ids to text (JSON string)");
  options.add_options()("help,h", "show this help")("tokenizer", po::value<std::string>(), "tokenizer.json (required)")(
      "text", po::value<std::string>(), "text to encode")("decode", po::value<std::string>(),
                                                          "comma-separated ids to decode, e.g. 12,345")(
      "skip-special", "when decoding, leave out special tokens");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus tokenize", options, vars, [&] {
        if (!vars.count("tokenizer") || vars.count("text") == vars.count("decode"))
          throw po::error("give --tokenizer and exactly one of --text or --decode");
      })) {
    return *exit_code;
  }
  try {
    models::Tokenizer tokenizer = models::Tokenizer::FromFile(vars["tokenizer"].as<std::string>());
    if (vars.count("text")) {
      std::cout << nlohmann::json(tokenizer.Encode(vars["text"].as<std::string>())).dump() << "\n";
    } else {
      std::vector<int32_t> ids = ParseIdList(vars["decode"].as<std::string>());
      std::cout << nlohmann::json(tokenizer.Decode(ids, vars.count("skip-special") > 0)).dump() << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus tokenize: %s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::cli
