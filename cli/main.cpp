// `pcmsim <command> [options]`: dispatches to the registered subcommands. Errors from the
// library arrive as exceptions with a tagged message; they are printed here, never in the
// library, and turn into exit code 2 (bad input) or 1 (other failures).
// Bad input = what the user must fix: an option (std::invalid_argument, Boost's parse errors)
// or a file (std::runtime_error: missing, truncated, corrupted, malformed, unwritable).
// Exit code 1 is left for internal failures (std::logic_error, std::bad_alloc, ...).

#include <algorithm>
#include <boost/program_options/errors.hpp>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/memory.h"
#include "git_revision.h"  // generated at build time: PCMSIM_GIT_REVISION

namespace pcmsim::cli {

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

bool register_command(Command command) {
  command_registry().push_back(std::move(command));
  return true;
}

namespace {

void print_usage(std::ostream& out) {
  auto commands = command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  out << "pcmsim: analog in-memory computing simulator for PCM crossbar inference\n\n"
         "usage: pcmsim <command> [options]     (pcmsim <command> --help for its options)\n\n"
         "commands:\n";
  for (const auto& c : commands) {
    out << "  " << c.name << std::string(c.name.size() < 14 ? 14 - c.name.size() : 1, ' ')
        << c.summary << "\n";
  }
}

}  // namespace
}  // namespace pcmsim::cli


int main(int argc, char** argv) {
  using namespace pcmsim::cli;
  pcmsim::core::keep_freed_memory();  // core/memory.h: big buffers reused across batches
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "--version") {
    std::cout << "pcmsim " << PCMSIM_VERSION << " (git " << PCMSIM_GIT_REVISION << ")\n";
    return 0;
  }
  if (args.empty()) {  // a usage error: the usage goes to stderr, as for an unknown command
    std::cerr << "pcmsim: error: no command given\n\n";
    print_usage(std::cerr);
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(std::cout);
    return 0;
  }
  // The longest registered name that prefixes the arguments wins ("bench mvm" over "bench").
  const Command* chosen = nullptr;
  std::size_t chosen_words = 0;
  for (const auto& c : command_registry()) {
    std::vector<std::string> words;
    std::string word;
    for (char ch : c.name + " ") {
      if (ch == ' ') {
        if (!word.empty()) words.push_back(word);
        word.clear();
      } else {
        word += ch;
      }
    }
    if (words.size() <= args.size() && std::equal(words.begin(), words.end(), args.begin()) &&
        words.size() > chosen_words) {
      chosen = &c;
      chosen_words = words.size();
    }
  }
  if (!chosen) {
    std::cerr << "pcmsim: error: unknown command '" << args[0] << "'\n\n";
    print_usage(std::cerr);
    return 2;
  }
  try {
    return chosen->run(std::vector<std::string>(args.begin() + chosen_words, args.end()));
  } catch (const std::invalid_argument& e) {
    std::cerr << "pcmsim " << chosen->name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const boost::program_options::error& e) {
    std::cerr << "pcmsim " << chosen->name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::runtime_error& e) {
    std::cerr << "pcmsim " << chosen->name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pcmsim " << chosen->name << ": error: " << e.what() << "\n";
    return 1;
  }
}
