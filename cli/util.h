// Small helpers shared by the subcommands: option value parsing and safe output files.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <utility>
#include <vector>

#include "nets/dataset.h"

namespace pcmsim::cli {

// The most OpenMP threads pcmsim asks for (--threads, OMP_NUM_THREADS of a sweep): libgomp
// crashes on absurd counts, and more threads than this never help.
constexpr int kMaxThreads = 1024;

// Parses a subcommand's arguments against `options`. A word that is not an option's value (a
// positional word: "--t-inference 1 3600") is an error naming it, never dropped. Boost's own
// parse errors (unknown option, missing value) pass through.
boost::program_options::parsed_options parse_arguments(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options);

// "1,5,12.5" -> {1, 5, 12.5} (core::parse_value: strict, no empty item). Throws
// std::invalid_argument naming the option and the bad item; an empty list is an error.
std::vector<double> parse_number_list(const std::string& text, const std::string& option);

// Checks before any work that `path` can take a results file: it does not exist or is a regular
// file (not a device, folder or link to one), its folder exists and is writable, and it is not
// a .csv name (the CSV view is written beside the HDF5 file). Throws naming --option.
void check_output_path(const std::string& path, const std::string& option);

// The same check for a text output (`pcmsim device/map --out`): "-" (standard output) or a
// path that does not exist or is a regular file in a writable folder; any extension.
void check_text_output_path(const std::string& path, const std::string& option);

// Loads the calibration data set: its first `count` images; a data set with fewer is an error
// naming --calibration-images (not the loader's `limit`).
nets::Dataset load_calibration_data(const std::string& spec, long count);

// Writes `content` to `path` via a temporary file in the same folder and an atomic rename, so
// a reader never sees a half-written file. "-" or "" writes to standard output.
void write_text_atomically(const std::string& path, const std::string& content);

}  // namespace pcmsim::cli
