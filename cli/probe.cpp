// thalamus probe: a container's liveness or readiness probe for an expert
// started with `thalamus-expert --health-file PATH` (exec probes in
// deploy/kubernetes). Live: the worker rewrote the file within --max-age-ms
// (its socket thread runs). Ready (--ready): live, and the file says "ready"
// (the broker took the worker and heartbeats to it; not draining). Exit 0
// when it holds, 1 (saying why) when not.
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"

namespace thalamus::cli {

int RunProbe(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus probe: is the expert behind --file live (and --ready)?");
  options.add_options()("help,h", "show this help")("file", po::value<std::string>()->required(),
                                                    "the expert's --health-file")(
      "ready", "also require the broker to have taken the worker (not connecting, not draining)")(
      "max-age-ms", po::value<int>()->default_value(5000), "older than this: the worker is stuck or gone");
  po::variables_map vars;
  if (auto code = ParseOptions(argc, argv, "thalamus probe", options, vars)) return *code;
  const std::string path = vars["file"].as<std::string>();
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    std::cerr << "thalamus probe: " << path << ": " << std::strerror(errno) << "\n";
    return 1;
  }
  const auto written = std::chrono::system_clock::time_point(std::chrono::seconds(info.st_mtim.tv_sec) +
                                                             std::chrono::nanoseconds(info.st_mtim.tv_nsec));
  const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() - written);
  if (age.count() > vars["max-age-ms"].as<int>()) {
    std::cerr << "thalamus probe: " << path << " was last written " << age.count() << " ms ago\n";
    return 1;
  }
  if (!vars.count("ready")) return 0;
  std::string state;
  std::ifstream(path) >> state;  // one word; anything else is "not ready"
  if (state != "ready") {
    std::cerr << "thalamus probe: the expert is " << (state.empty() ? "in an unknown state" : state) << "\n";
    return 1;
  }
  return 0;
}

}  // namespace thalamus::cli
