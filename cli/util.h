// Small helpers shared by the subcommands: option value parsing and safe output files.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pcmsim::cli {

// "1,5,12.5" -> {1, 5, 12.5}. Throws std::invalid_argument naming the option and the bad item.
std::vector<double> parse_number_list(const std::string& text, const std::string& option);
std::vector<int> parse_int_list(const std::string& text, const std::string& option);
// "256x256" -> {256, 256} (rows, cols), both >= 1.
std::pair<int, int> parse_tile_shape(const std::string& text, const std::string& option);

// Writes `content` to `path` via a temporary file in the same folder and an atomic rename, so
// a reader never sees a half-written file. "-" or "" writes to standard output.
void write_text_atomically(const std::string& path, const std::string& content);

}  // namespace pcmsim::cli
