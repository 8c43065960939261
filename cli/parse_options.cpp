#include "cli/parse_options.h"

#include <exception>
#include <iostream>

namespace thalamus::cli {

namespace po = boost::program_options;

std::optional<int> ParseOptions(int argc, char** argv, const std::string& command,
                                const po::options_description& options, po::variables_map& vars,
                                const std::function<void()>& check,
                                const po::positional_options_description* positional) {
  try {
    po::command_line_parser parser(argc, argv);
    parser.options(options);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), vars);
    if (vars.count("help")) {
      std::cout << options;
      return 0;
    }
    po::notify(vars);
    if (check) check();
  } catch (const std::exception& e) {
    std::cerr << command << ": " << e.what() << "\n" << options;
    return 2;
  }
  return std::nullopt;
}

}  // namespace thalamus::cli
