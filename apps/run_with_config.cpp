#include "apps/run_with_config.h"

#include <cstdio>
#include <exception>

namespace thalamus::apps {

boost::program_options::options_description ConfigOptions(const std::string& caption) {
  namespace po = boost::program_options;
  po::options_description options(caption);
  options.add_options()("help,h", "show this help")("version", "print the version and exit")(
      "config", po::value<std::string>(), "config file (default: the embedded config/default.yaml)");
  return options;
}

int RunWithConfig(const char* program, const boost::program_options::variables_map& vars,
                  const std::function<int(const config::Config& config, const std::string& path)>& run) {
  try {
    const std::string path = vars.count("config") ? vars["config"].as<std::string>() : "";
    const config::Config config = path.empty() ? config::LoadDefault() : config::LoadFile(path);
    return run(config, path);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace thalamus::apps
