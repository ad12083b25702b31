// Image classification data sets: Fashion-MNIST/MNIST IDX files (gzip'ed or not) and the
// generic HDF5 data set (docs/formats.md), with the normalisation recorded in the model file.
#pragma once

#include <string>
#include <vector>

#include "nets/network.h"

namespace pcmsim::nets {

struct Dataset {
  std::string name;  // e.g. "fashion-mnist:t10k" or the file path
  Index channels = 1, height = 0, width = 0;
  MatrixF images;           // N x C*H*W, pixels in [0, 1], not normalised, C order
  std::vector<int> labels;  // N
  Index size() const { return images.rows(); }
};

// Reads an IDX image file (magic 0x803, uint8, N x H x W) and its label file (magic 0x801);
// gzip is detected from the content. `limit` > 0 keeps the first `limit` images; a limit above
// the file's count is an error (std::invalid_argument), not clamped. Errors (std::runtime_error)
// name the file: missing, wrong magic, truncated, corrupt gzip, count mismatch between the two
// files. Memory follows what the file holds, not what its header declares.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         Index limit = 0);

// Reads an HDF5 data set: `images` uint8 [N, C, H, W] (or [N, H, W]) divided by 255, or float
// already in [0, 1] (a float outside is an error); `labels` int [N]; `limit` as above.
Dataset load_hdf5_dataset(const std::string& path, Index limit = 0);
// Writes one (images as float32 in [0, 1], labels as int64). For fixtures and conversions.
void save_hdf5_dataset(const Dataset& data, const std::string& path);

// Where Debian's dataset-fashion-mnist puts the IDX files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Opens a data set by name: "fashion-mnist:test" / "fashion-mnist:t10k" (the 10k test set),
// "fashion-mnist:train", optionally followed by "@DIR" for another folder; a path ending in .h5
// or .hdf5 (HDF5 data set); or a path to an IDX images file "...images-idx3-ubyte[.gz]" (labels
// found by replacing "images-idx3" with "labels-idx1").
Dataset load_dataset(const std::string& spec, Index limit = 0);

// Checks that `data` fits `net`: image size (C, H, W) equals the model's input_shape, every
// label in [0, num_classes). Throws std::invalid_argument naming both.
void check_compatible(const Dataset& data, const Network& net);

// The images normalised as the model records ((x - mean[c]) / std[c]), N x C*H*W, after
// check_compatible().
MatrixF normalized_images(const Dataset& data, const Network& net);

}  // namespace pcmsim::nets
