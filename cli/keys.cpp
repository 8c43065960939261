// thalamus keys generate: a CURVE key pair for the router, an expert or a
// ZeroMQ client (security/curve_keys.h).
#include <cstdio>
#include <cstring>
#include <iostream>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "security/curve_keys.h"

namespace thalamus::cli {

int RunKeys(int argc, char** argv) {
  namespace po = boost::program_options;
  if (argc < 2 || std::strcmp(argv[1], "generate") != 0) {
    std::cerr << "usage: thalamus keys generate --out PATH   (writes PATH.key, mode 0600, and PATH.pub)\n";
    return 2;
  }
  po::options_description options(
      "thalamus keys generate: write a CURVE key pair as PATH.key (secret, mode 0600) and PATH.pub");
  options.add_options()("help,h", "show this help")("out", po::value<std::string>()->required(),
                                                    "PATH: where the two files go (existing files are kept)");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc - 1, argv + 1, "thalamus keys generate", options, vars)) return *exit_code;
  try {
    const std::string base = vars["out"].as<std::string>();
    const security::KeyPair keys = security::GenerateKeyPair();
    security::WriteKeyPair(keys, base);
    std::printf("%s.key  %s.pub  public key %s\n", base.c_str(), base.c_str(), keys.public_key.c_str());
    return 0;
  } catch (const security::KeyError& e) {
    std::cerr << "thalamus keys: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace thalamus::cli
