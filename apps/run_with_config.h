// RunWithConfig: what the router's and the expert's mains share after their
// options are parsed: load --config (or the embedded default) and run.
// Private to apps/.
#pragma once

#include <functional>
#include <string>

#include <boost/program_options.hpp>

#include "config/config.h"

namespace thalamus::apps {

// --help and --config, the options both mains take, under `caption`.
boost::program_options::options_description ConfigOptions(const std::string& caption);

// Loads the config that `vars` names under "config" (the embedded default
// when absent) and returns what `run` returns. Errors become exit codes: a
// config error is printed as it is (it names file, line and key) and gives 2;
// any other exception is printed after "<program>: " and gives 1.
int RunWithConfig(const char* program, const boost::program_options::variables_map& vars,
                  const std::function<int(const config::Config& config, const std::string& path)>& run);

}  // namespace thalamus::apps
