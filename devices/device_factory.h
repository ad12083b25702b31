// Builds a device model from its name and parameters: the one place that knows every model.
// `pcmsim device --model <name>`, the simulate pipeline and the Python bindings all go through
// make_device_model, so a new model registered here is available everywhere
// (docs/adding-a-device.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "devices/device_model.h"
#include "devices/ideal_model.h"
#include "devices/pcm_model.h"
#include "devices/state_independent_model.h"
#include "devices/tabulated_model.h"

namespace pcmsim::devices {

// Which model, and the parameters of each (only the chosen model's are used and validated).
struct DeviceSpec {
  std::string model = "pcm";  // "pcm", "ideal", "state-independent", "tabulated"
  PcmParams pcm;
  IdealParams ideal;
  StateIndependentParams state_independent;
  TabulatedParams tabulated;  // tabulated.table_path: the CSV or HDF5 table to read
};

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
