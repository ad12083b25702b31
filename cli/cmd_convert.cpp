// `pcmsim convert IN OUT`: a model in any format pcmsim reads (ONNX, docs/onnx.md) written in
// pcmsim's HDF5 model format (docs/formats.md), recording where it came from.
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/setting_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "nets/model_io.h"
#include "nets/onnx_import.h"

namespace po = boost::program_options;

namespace pcmsim::cli {
namespace {

constexpr const char* kWhere = "cli convert";

constexpr const char* kUsage =
    "usage: pcmsim convert IN.onnx OUT.h5 [--input-mean M] [--input-std S]\n\n"
    "Reads a model (ONNX, or a pcmsim HDF5 model) and writes it in pcmsim's HDF5 model format\n"
    "(docs/formats.md) with the root attribute converted_from naming the source file, its\n"
    "producer and opset. The input normalisation comes from --input-mean/--input-std, else the\n"
    "ONNX file's metadata_props, else mean 0 and std 1 (docs/onnx.md).\n";

int run_convert(const std::vector<std::string>& args) {
  po::options_description opts("Options", 110, 60);
  opts.add_options()("help,h", "show this help and exit");
  add_setting_options<nets::ModelInputOptions>(opts);
  po::options_description positional_opts;
  positional_opts.add_options()("in", po::value<std::string>(), "input model")(
      "out", po::value<std::string>(), "output model (.h5)");
  po::positional_options_description positional;
  positional.add("in", 1).add("out", 1);
  po::options_description all;
  all.add(opts).add(positional_opts);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    core::throw_invalid(kWhere, e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << opts << "\n";
    return 0;
  }
  if (!vm.count("in") || !vm.count("out"))
    core::throw_invalid(kWhere, "expected two arguments: the input model and the output file");
  const std::string in = vm["in"].as<std::string>(), out = vm["out"].as<std::string>();
  check_output_path(out, "OUT");
  nets::ModelInputOptions input;
  apply_setting_options(vm, input);
  nets::Network net = nets::load_model(in, input);
  if (net.converted_from.empty()) net.converted_from = "pcmsim-model: " + in;
  nets::save_network(net, out);
  std::cout << "wrote " << out << ": model '" << net.name << "', " << net.layers.size()
            << " layers, " << nets::parameter_count(net) << " parameters, "
            << nets::layer_matrices(net).size() << " on tiles (" << net.converted_from << ")\n";
  return 0;
}

}  // namespace

PCMSIM_COMMAND("convert", "write a model (ONNX, ...) in pcmsim's HDF5 model format", run_convert);

}  // namespace pcmsim::cli
