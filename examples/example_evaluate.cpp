// Loads a network of the model zoo and evaluates it on a simulated PCM chip through the library
// API: FP32 accuracy, then accuracy one hour and one year after programming with drift
// compensation, over two Monte Carlo trials.
//
// Build and run from the repository root: make build && build/bin/example_evaluate [MODEL] [N]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nets/dataset.h"
#include "nets/evaluation.h"
#include "nets/model_io.h"

using namespace pcmsim;

int main(int argc, char** argv) {
  const std::string model = argc > 1 ? argv[1] : "zoo/mlp_hwa.h5";
  const long limit = argc > 2 ? std::atol(argv[2]) : 500;
  try {
    // Stage 1: the network (passive description) and the first `limit` test images.
    const nets::Network net = nets::load_network(model);
    const nets::Dataset data = nets::load_dataset("fashion-mnist:t10k", limit);
    nets::check_compatible(data, net);
    const core::MatrixF images = nets::normalized_images(data, net);

    // The chip: 256 x 256 tiles of PCM devices, 8-bit DAC and ADC, GDC on (the defaults).
    nets::SimulationConfig config;
    config.seed = 7;
    nets::EvaluationOptions options;
    options.t_inference = {3600.0, 31536000.0};
    options.trials = 2;

    // Stages 2-5: plan, program each trial once, snapshot per time, run the images.
    const nets::EvaluationResult result =
        nets::evaluate(net, images, data.labels, config, options, core::MatrixF());
    std::printf("%s on %ld images: FP32 %.2f %%\n", model.c_str(), long(result.images),
                100 * result.fp32_accuracy);
    for (const nets::TimeSummary& t : result.times)
      std::printf("  t = %10.0f s: %.2f %% +- %.2f %% over %zu trials\n", t.t_inference,
                  100 * t.mean, 100 * t.std, t.accuracy.size());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example_evaluate: %s\n", e.what());
    return 1;
  }
  return 0;
}
