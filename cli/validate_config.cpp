#include <cstdio>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "config/config.h"

namespace thalamus::cli {

int RunValidateConfig(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus config: load a config file and report the first error");
  options.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                    "config file (default: the embedded default)");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus config", options, vars)) return *exit_code;
  try {
    config::Config cfg =
        vars.count("config") ? config::LoadFile(vars["config"].as<std::string>()) : config::LoadDefault();
    std::printf("%s: ok, %zu expert service(s)\n", cfg.file.c_str(), cfg.experts.size());
    return 0;
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::cli
