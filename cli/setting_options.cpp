#include "cli/setting_options.h"

#include <iostream>

#include "cli/util.h"
#include "core/error.h"

namespace pcmsim::cli {

const std::vector<DeprecatedAlias>& deprecated_aliases() {
  static const std::vector<DeprecatedAlias> aliases = {
      {"device", "device-model"},  {"pairs", "num-pairs"},        {"tiles", "num-tiles"},
      {"batch", "batch-size"},     {"significance", "significance-factor"},
      {"table", "device-table"},   {"t0-s", "t0"},                {"t-read-s", "t-read"},
  };
  return aliases;
}

void add_deprecated_options(po::options_description& hidden) {
  for (const auto& a : deprecated_aliases())
    hidden.add_options()(a.old_name, po::value<std::string>(), "deprecated");
}

void resolve_deprecated(po::variables_map& vm) {
  for (const auto& a : deprecated_aliases()) {
    const auto it = vm.find(a.old_name);
    if (it == vm.end() || it->second.empty()) continue;
    if (given(vm, a.new_name))
      core::throw_invalid("cli", core::concat("--", a.old_name, " and --", a.new_name,
                                              " name the same setting: give only --",
                                              a.new_name));
    std::cerr << "pcmsim: warning: --" << a.old_name << " is deprecated, use --" << a.new_name
              << "\n";
    vm.erase(a.new_name);
    vm.insert({a.new_name, it->second});
    vm.erase(a.old_name);
  }
}

po::variables_map parse_options(const std::vector<std::string>& args,
                                const po::options_description& visible, const char* where) {
  po::options_description hidden;
  add_deprecated_options(hidden);
  po::options_description all;
  all.add(visible).add(hidden);
  po::variables_map vm;
  try {
    po::store(parse_arguments(args, all), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    core::throw_invalid(where, e.what());
  }
  resolve_deprecated(vm);
  return vm;
}

}  // namespace pcmsim::cli
