// Subcommands of the `pcmsim` command. Each lives in its own cmd_<name>.cpp and registers
// itself with PCMSIM_COMMAND, so adding one touches no shared file.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace pcmsim::cli {

struct Command {
  std::string name;     // e.g. "device", or "bench mvm" for a nested command
  std::string summary;  // one line for `pcmsim --help`
  // Receives the arguments after the command name; returns the process exit code.
  std::function<int(const std::vector<std::string>& args)> run;
};

std::vector<Command>& command_registry();
bool register_command(Command command);

}  // namespace pcmsim::cli

#define PCMSIM_CONCAT_INNER(a, b) a##b
#define PCMSIM_CONCAT(a, b) PCMSIM_CONCAT_INNER(a, b)
#define PCMSIM_COMMAND(name, summary, function)                       \
  static const bool PCMSIM_CONCAT(pcmsim_registered_, __LINE__) =     \
      ::pcmsim::cli::register_command({name, summary, function})
