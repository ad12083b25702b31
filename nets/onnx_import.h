// Importing ONNX models (docs/onnx.md): an ONNX graph becomes a Network whose linear, conv1d and
// conv2d layers go onto tiles like any other; everything else stays digital.
#pragma once

#include <string>
#include <vector>

#include "core/settings.h"
#include "nets/network.h"

namespace pcmsim::nets {

// The default-domain opsets read (docs/onnx.md lists the operators).
constexpr int kOnnxMinOpset = 9;
constexpr int kOnnxMaxOpset = 17;

// Input normalisation, which an ONNX file does not carry: given here, or in the file's
// metadata_props `input_mean` / `input_std` (comma-separated), or else mean 0, std 1. One value
// applies to every channel.
struct ModelInputOptions {
  std::vector<double> input_mean;  // per input channel, or one for all; empty: from the file
  std::vector<double> input_std;   // per input channel, or one for all (> 0); empty: from the file

  void validate() const;

  template <class V>
  static void fields(V& v) {
    using S = ModelInputOptions;
    v.field({"input_mean", "", "finite; 1 or C values",
             "ONNX models: per-channel input normalisation mean (default: the file's "
             "metadata_props, else 0)",
             core::Affects::programming},
            [](S& s) -> auto& { return s.input_mean; });
    v.field({"input_std", "", "> 0; 1 or C values",
             "ONNX models: per-channel input normalisation std (default: the file's "
             "metadata_props, else 1)",
             core::Affects::programming},
            [](S& s) -> auto& { return s.input_std; });
  }
};

// Whether `path` names an ONNX file (extension .onnx, any case).
bool is_onnx_path(const std::string& path);
// Whether this build reads ONNX (built with libonnx-dev).
bool onnx_available();

// Reads an ONNX model and converts it: constant subgraphs folded, operators mapped to layers
// (docs/onnx.md). Throws std::runtime_error "[nets::import_onnx] <path>: ..." naming every
// unsupported operator with its node name, or the node that cannot be converted and why; a
// malformed, truncated or wrong-opset file is a clear error too.
Network import_onnx(const std::string& path, const ModelInputOptions& input = {});

// A model in either format: ONNX by extension, pcmsim's HDF5 format otherwise. `input` applies
// to ONNX only (an HDF5 model carries its normalisation; giving both is an error).
Network load_model(const std::string& path, const ModelInputOptions& input = {});

}  // namespace pcmsim::nets
