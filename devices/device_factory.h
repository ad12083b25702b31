// Builds a device model from its name and parameters: the one place that knows every model.
// `pcmsim device --model <name>`, the simulate pipeline and the Python bindings all go through
// make_device_model, so a new model registered here is available everywhere
// (docs/adding-a-device.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/settings.h"
#include "devices/device_model.h"
#include "devices/hermes_model.h"
#include "devices/ideal_model.h"
#include "devices/pcm_model.h"
#include "devices/state_independent_model.h"
#include "devices/tabulated_model.h"

namespace pcmsim::devices {

// Which model, and the parameters of each (only the chosen model's are used and validated).
struct DeviceSpec {
  std::string model = "pcm";  // "pcm", "hermes", "ideal", "state_independent", "tabulated"
  PcmParams pcm;
  HermesParams hermes;
  IdealParams ideal;
  StateIndependentParams state_independent;
  TabulatedParams tabulated;  // tabulated.table_path: the CSV or HDF5 table to read

  // The settings: the model, the parameters several models share (one setting sets them in
  // every model that has them; it reads the chosen model's), then each model's own.
  template <class V>
  static void fields(V& v);
  // Throws std::invalid_argument for an unknown model name.
  void validate() const;
};

template <class V>
void DeviceSpec::fields(V& v) {
  using S = DeviceSpec;
  const core::Affects p = core::Affects::programming;
  v.field({"model", "", "a registered model: pcmsim device --help lists them", "device model",
           p, "device_model"}, [](S& s) -> auto& { return s.model; });
  v.computed({"g_max", "S",
              "> 0 (tabulated, hermes: <= the table's / characterised largest; 0 = that)",
              "largest device conductance", p, "g_max_uS", 1e-6},
             [](const S& s) {
               return s.model == "ideal" ? s.ideal.g_max
                      : s.model == "state_independent" ? s.state_independent.g_max
                      : s.model == "tabulated" ? s.tabulated.g_max
                      : s.model == "hermes" ? s.hermes.g_max : s.pcm.g_max;
             },
             [](S& s, double g) {
               s.pcm.g_max = s.ideal.g_max = s.state_independent.g_max = s.tabulated.g_max =
                   s.hermes.g_max = g;
             });
  // The scales and times every noisy model has (the ideal model has none).
  const auto noisy = [&v](core::FieldInfo info, auto member_pcm, auto member_si, auto member_tab,
                          auto member_hermes) {
    v.computed(info,
               [=](const S& s) {
                 return s.model == "state_independent" ? s.state_independent.*member_si
                        : s.model == "tabulated"       ? s.tabulated.*member_tab
                        : s.model == "hermes"          ? s.hermes.*member_hermes
                                                       : s.pcm.*member_pcm;
               },
               [=](S& s, double x) {
                 s.pcm.*member_pcm = x;
                 s.state_independent.*member_si = x;
                 s.tabulated.*member_tab = x;
                 s.hermes.*member_hermes = x;
               });
  };
  noisy({"prog_noise_scale", "", ">= 0", "multiplies the programming noise", p},
        &PcmParams::prog_noise_scale, &StateIndependentParams::prog_noise_scale,
        &TabulatedParams::prog_noise_scale, &HermesParams::prog_noise_scale);
  noisy({"drift_scale", "", ">= 0", "multiplies the drift exponent", p},
        &PcmParams::drift_scale, &StateIndependentParams::drift_scale,
        &TabulatedParams::drift_scale, &HermesParams::drift_scale);
  noisy({"read_noise_scale", "", ">= 0", "multiplies the 1/f read noise", p},
        &PcmParams::read_noise_scale, &StateIndependentParams::read_noise_scale,
        &TabulatedParams::read_noise_scale, &HermesParams::read_noise_scale);
  noisy({"t0", "s", "> 0 (hermes: 0 = its characterised first read)", "drift reference time",
         p}, &PcmParams::t0, &StateIndependentParams::t0, &TabulatedParams::t0,
        &HermesParams::t0);
  noisy({"t_read", "s", "> 0", "read duration of the 1/f noise integral", p},
        &PcmParams::t_read, &StateIndependentParams::t_read, &TabulatedParams::t_read,
        &HermesParams::t_read);
  // pcm
  v.field({"read_noise_reference", "", "", "pcm: x of the read-noise Q_s(x)", p},
          [](S& s) -> auto& { return s.pcm.read_noise_reference; });
  // hermes
  v.field({"hermes_devices", "", "1 or 2", "hermes: devices per weight of the characterisation",
           p}, [](S& s) -> auto& { return s.hermes.hermes_devices; });
  // state_independent
  v.field({"prog_noise_std", "S", ">= 0", "state_independent: programming-noise std", p,
           "prog_noise_std_uS", 1e-6}, [](S& s) -> auto& { return s.state_independent.prog_noise_std; });
  v.field({"nu_mean", "", "finite", "state_independent: mean of the folded normal of nu", p},
          [](S& s) -> auto& { return s.state_independent.nu_mean; });
  v.field({"nu_std", "", ">= 0", "state_independent: its std", p},
          [](S& s) -> auto& { return s.state_independent.nu_std; });
  v.field({"read_noise_q", "", ">= 0", "state_independent: constant Q_s", p},
          [](S& s) -> auto& { return s.state_independent.read_noise_q; });
  // tabulated
  v.field({"device_table", "", "CSV or HDF5 file", "tabulated: the measured device table", p},
          [](S& s) -> auto& { return s.tabulated.table_path; });
}

// The model named by spec.model with its parameters (validated). An unknown name throws
// std::invalid_argument listing the known names; a bad table file throws as its reader does.
std::shared_ptr<const DeviceModel> make_device_model(const DeviceSpec& spec);

// The registered model names with a one-line description each, in registration order.
struct DeviceModelInfo {
  std::string name;
  std::string summary;
};
const std::vector<DeviceModelInfo>& device_model_infos();
std::vector<std::string> device_model_names();

}  // namespace pcmsim::devices
