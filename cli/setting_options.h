// Command-line options generated from the settings' field lists (core/settings.h): one option
// per setting, spelled with hyphens (p_in -> --p-in), its help, unit, range and default taken
// from the list, so no option of a config struct is written here by hand.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "core/settings.h"

namespace pcmsim::cli {

namespace po = boost::program_options;

// The spellings of earlier releases, kept for one release: old option -> new option.
struct DeprecatedAlias {
  const char* old_name;
  const char* new_name;
};
const std::vector<DeprecatedAlias>& deprecated_aliases();

// "help text [unit; range; default X]" of one setting.
// The option's name carries the unit when the text form is scaled (--g-max-uS).
template <class S>
std::string setting_help(const core::Setting<S>& s, const S& defaults) {
  return std::string(s.info.help) + " [" +
         core::describe_setting(s.info, s.choices, s.text(defaults), s.info.text_scale == 1.0) +
         "]";
}

// Adds an option for every setting of S (string-valued: parsed by the setting itself). `only`
// keeps the settings whose external name it lists (all when empty).
template <class S>
void add_setting_options(po::options_description& options, const S& defaults = S{},
                         const std::vector<std::string>& only = {}) {
  for (const auto& s : core::settings<S>()) {
    if (!only.empty() &&
        std::find(only.begin(), only.end(), std::string(s.info.external_name())) == only.end())
      continue;
    options.add_options()(s.option_name().c_str(), po::value<std::string>(),
                          setting_help(s, defaults).c_str());
  }
}

// The deprecated spellings as hidden options (add them to the parser, not to --help).
void add_deprecated_options(po::options_description& hidden);
// Moves values given under a deprecated spelling to the new one, with a warning on stderr.
// Throws std::invalid_argument when both spellings are given.
void resolve_deprecated(po::variables_map& vm);

// Parses a subcommand's arguments against `visible` and the deprecated spellings (hidden),
// notifies and resolves the latter. Parser errors become std::invalid_argument tagged `where`.
po::variables_map parse_options(const std::vector<std::string>& args,
                                const po::options_description& visible, const char* where);

// The value given for a setting (by its option name), or nullptr.
inline const std::string* given(const po::variables_map& vm, const std::string& option) {
  const auto it = vm.find(option);
  return it == vm.end() || it->second.empty() ? nullptr : &it->second.as<std::string>();
}

// Sets every setting of S given on the command line (the others keep their values in `s`);
// returns the external names of those given. Errors name the option.
template <class S>
std::vector<std::string> apply_setting_options(const po::variables_map& vm, S& s) {
  std::vector<std::string> names;
  for (const auto& setting : core::settings<S>()) {
    const std::string option = setting.option_name();
    if (const std::string* text = given(vm, option)) {
      setting.set(s, core::parse_value("--" + option, setting.type, *text,
                                       setting.info.text_scale));
      names.push_back(setting.info.external_name());
    }
  }
  return names;
}

}  // namespace pcmsim::cli
