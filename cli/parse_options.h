// The option parsing every `thalamus` subcommand shares, and the mains of
// apps/ too.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <boost/program_options.hpp>

namespace thalamus::cli {

// Parses argv into `vars` (with `positional` when given). Returns the exit code
// when the subcommand should stop now: 0 after --help, which prints `options`
// before anything is checked; 2 after a usage error, printed as
// "<command>: <what>" and then `options` on stderr. Otherwise runs
// po::notify, then `check` (which throws for invalid values), and returns
// nullopt. Any exception from parsing or `check` counts as a usage error.
std::optional<int> ParseOptions(int argc, char** argv, const std::string& command,
                                const boost::program_options::options_description& options,
                                boost::program_options::variables_map& vars, const std::function<void()>& check = {},
                                const boost::program_options::positional_options_description* positional = nullptr);

}  // namespace thalamus::cli
