// Reading and writing the pcmsim HDF5 model format (docs/formats.md, "pcmsim-model" v1).
#pragma once

#include <string>

#include "nets/network.h"

namespace pcmsim::nets {

constexpr const char* kModelFormat = "pcmsim-model";
constexpr int kModelFormatVersion = 1;

// Loads and fully validates a model file: format and version, every attribute's presence and
// type, kinds, layer order and names, graph edges, weight shapes against the declared shapes,
// finite weights, shape propagation from the input shape, and the optional `reference` group.
// Throws std::runtime_error naming the file, the layer and the offending value, e.g.
// "[nets::load_network] m.h5: layer 2 'fc1' (linear): weight has shape (10, 784), expected (256,
// 784)".
Network load_network(const std::string& path);

// Writes `net` (validated first) in the same format, with its reference group if any. The file
// is written under a temporary name and renamed, so a reader never sees half a file.
void save_network(const Network& net, const std::string& path);

}  // namespace pcmsim::nets
