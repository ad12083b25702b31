#include "devices/device_factory.h"

#include <functional>

#include "core/error.h"

namespace pcmsim::devices {
namespace {

struct Entry {
  DeviceModelInfo info;
  std::function<std::shared_ptr<const DeviceModel>(const DeviceSpec&)> make;
};

// The registry: one line per model.
const std::vector<Entry>& registry() {
  static const std::vector<Entry> entries = {
      {{"pcm", "doped-GST PCM statistics (Nandakumar 2019, Joshi 2020)"},
       [](const DeviceSpec& s) { return std::make_shared<const PcmModel>(s.pcm); }},
      {{"hermes", "PCM statistics of IBM's HERMES chip (Le Gallo 2023), 1 or 2 devices per weight"},
       [](const DeviceSpec& s) { return std::make_shared<const HermesModel>(s.hermes); }},
      {{"ideal", "g = g_target at all times"},
       [](const DeviceSpec& s) { return std::make_shared<const IdealModel>(s.ideal); }},
      {{"state_independent", "constant sigma_prog, nu ~ |N(0.1, 0.05)|, constant Q_s"},
       [](const DeviceSpec& s) {
         return std::make_shared<const StateIndependentModel>(s.state_independent);
       }},
      {{"tabulated", "measured statistics from a CSV or HDF5 table"},
       [](const DeviceSpec& s) {
         s.tabulated.validate();
         if (s.tabulated.table_path.empty())
           core::throw_invalid("devices::make_device_model",
                               "model 'tabulated' needs a table file (tabulated.table_path)");
         return std::make_shared<const TabulatedModel>(
             read_device_table(s.tabulated.table_path), s.tabulated);
       }},
  };
  return entries;
}

}  // namespace

const std::vector<DeviceModelInfo>& device_model_infos() {
  static const std::vector<DeviceModelInfo> infos = [] {
    std::vector<DeviceModelInfo> v;
    for (const auto& e : registry()) v.push_back(e.info);
    return v;
  }();
  return infos;
}

std::vector<std::string> device_model_names() {
  std::vector<std::string> names;
  for (const auto& e : registry()) names.push_back(e.info.name);
  return names;
}

namespace {
// The registered name of `model`; the hyphenated spelling of earlier releases is accepted.
const Entry* find_entry(const std::string& model) {
  const std::string name = core::canonical_setting_name(model);
  for (const auto& e : registry())
    if (e.info.name == name) return &e;
  return nullptr;
}
}  // namespace

void DeviceSpec::validate() const {
  const Entry* entry = find_entry(model);
  if (!entry) make_device_model(*this);  // throws the message below
  // A setting of another model that differs from its default would be silently ignored.
  const DeviceSpec d;
  const auto only_for = [&](const char* field, bool differs, const char* owner) {
    if (differs && entry->info.name != owner)
      core::throw_invalid("devices::DeviceSpec",
                          core::concat(field, " is set but only used by model ", owner,
                                       " (model = ", entry->info.name, ")"));
  };
  only_for("read_noise_reference", pcm.read_noise_reference != d.pcm.read_noise_reference, "pcm");
  only_for("hermes_devices", hermes.hermes_devices != d.hermes.hermes_devices, "hermes");
  const auto& si = state_independent;
  only_for("prog_noise_std", si.prog_noise_std != d.state_independent.prog_noise_std,
           "state_independent");
  only_for("nu_mean", si.nu_mean != d.state_independent.nu_mean, "state_independent");
  only_for("nu_std", si.nu_std != d.state_independent.nu_std, "state_independent");
  only_for("read_noise_q", si.read_noise_q != d.state_independent.read_noise_q,
           "state_independent");
  only_for("device_table", !tabulated.table_path.empty(), "tabulated");
}

std::shared_ptr<const DeviceModel> make_device_model(const DeviceSpec& spec) {
  if (const Entry* e = find_entry(spec.model)) return e->make(spec);
  std::string known;
  for (const auto& e : registry()) known += (known.empty() ? "'" : ", '") + e.info.name + "'";
  core::throw_invalid("devices::make_device_model",
                      core::concat("model = '", spec.model, "': unknown device model (known: ",
                                   known, ")"));
}

}  // namespace pcmsim::devices
