// Small helpers shared by the subcommands: option value parsing and safe output files.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pcmsim::cli {

// "1,5,12.5" -> {1, 5, 12.5} (core::parse_value: strict, no empty item). Throws
// std::invalid_argument naming the option and the bad item; an empty list is an error.
std::vector<double> parse_number_list(const std::string& text, const std::string& option);

// Checks before any work that `path` can take a results file: it does not exist or is a regular
// file (not a device, folder or link to one), its folder exists and is writable, and it is not
// a .csv name (the CSV view is written beside the HDF5 file). Throws naming --option.
void check_output_path(const std::string& path, const std::string& option);

// Writes `content` to `path` via a temporary file in the same folder and an atomic rename, so
// a reader never sees a half-written file. "-" or "" writes to standard output.
void write_text_atomically(const std::string& path, const std::string& content);

}  // namespace pcmsim::cli
