// thalamus keys generate: a CURVE key pair for the router, an expert or a
// ZeroMQ client (security/curve_keys.h); thalamus keys api: an HTTP API key
// (security/api_keys.h).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "security/api_keys.h"
#include "security/curve_keys.h"

namespace thalamus::cli {

namespace {

// `keys api`: a new HTTP API key, printed once; its hash goes into the keys file.
int RunApiKey(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus keys api: make an HTTP API key, add its hash to FILE, print the key once");
  options.add_options()("help,h", "show this help")("name", po::value<std::string>()->required(),
                                                    "the key's name in logs and metrics")(
      "file", po::value<std::string>()->required(), "the keys file (http.api_keys); created with mode 0600")(
      "rpm", po::value<int64_t>()->default_value(0), "requests per minute (0: unlimited)")(
      "tpm", po::value<int64_t>()->default_value(0), "tokens per minute (0: unlimited)");
  po::variables_map vars;
  const auto check = [&] {
    const std::string& name = vars["name"].as<std::string>();
    if (name.empty() || name.find_first_of(" \t\n#") != std::string::npos) {
      throw std::invalid_argument("--name must be one word");
    }
    if (vars["rpm"].as<int64_t>() < 0 || vars["tpm"].as<int64_t>() < 0) throw std::invalid_argument("limits are >= 0");
  };
  if (auto exit_code = ParseOptions(argc, argv, "thalamus keys api", options, vars, check)) return *exit_code;
  const std::string path = vars["file"].as<std::string>();
  const std::string key = security::NewApiKey();
  const std::string line =
      security::ApiKeyLine(vars["name"].as<std::string>(), key, vars["rpm"].as<int64_t>(), vars["tpm"].as<int64_t>());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    std::cerr << "thalamus keys api: cannot append to " << path << "\n";
    return 1;
  }
  ::close(fd);
  std::printf("%s\n", key.c_str());
  std::fprintf(stderr, "added '%s' to %s; the key above is shown only this once\n",
               vars["name"].as<std::string>().c_str(), path.c_str());
  return 0;
}

}  // namespace

int RunKeys(int argc, char** argv) {
  namespace po = boost::program_options;
  if (argc >= 2 && std::strcmp(argv[1], "api") == 0) return RunApiKey(argc - 1, argv + 1);
  if (argc < 2 || std::strcmp(argv[1], "generate") != 0) {
    std::cerr << "usage: thalamus keys generate --out PATH   (a CURVE pair: PATH.key, mode 0600, and PATH.pub)\n"
                 "       thalamus keys api --name NAME --file FILE [--rpm N] [--tpm N]   (an HTTP API key)\n";
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
