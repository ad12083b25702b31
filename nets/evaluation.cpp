#include "nets/evaluation.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"

namespace pcmsim::nets {
namespace {
constexpr const char* kTag = "nets::evaluate";
using core::concat;
}  // namespace

void EvaluationOptions::validate() const {
  if (t_inference.empty()) core::throw_invalid(kTag, "t_inference: no inference time given");
  for (double t : t_inference) core::require_non_negative(kTag, "t_inference", t);
  if (trials < 1) core::throw_invalid(kTag, concat("trials = ", trials, ": must be >= 1"));
  if (batch_size < 1)
    core::throw_invalid(kTag, concat("batch_size = ", batch_size, ": must be >= 1"));
  if (calibration_images < 1)
    core::throw_invalid(kTag, concat("calibration_images = ", calibration_images,
                                     ": must be >= 1"));
}

double accuracy_of(const Network& net, const MatrixF& images, const std::vector<int>& labels,
                   MatmulProvider& provider, Index batch_size) {
  return accuracy(predict(net, images, provider, batch_size), labels);
}

EvaluationResult evaluate(const Network& net, const MatrixF& images,
                          const std::vector<int>& labels, const SimulationConfig& config,
                          const EvaluationOptions& options, const MatrixF& calibration_images,
                          const ProgressCallback& progress) {
  options.validate();
  config.validate();
  if (images.rows() == 0) core::throw_invalid(kTag, "no images to evaluate");
  if (static_cast<Index>(labels.size()) != images.rows())
    core::throw_invalid(kTag, concat(images.rows(), " images but ", labels.size(), " labels"));
  if (config.calibrate && calibration_images.rows() == 0)
    core::throw_invalid(kTag, "config.calibrate is set but no calibration images were given");

  EvaluationResult result;
  result.images = images.rows();
  const int passes = options.trials * static_cast<int>(options.t_inference.size()) +
                     (options.fp32 ? 1 : 0);
  Progress state{0, passes, ""};
  auto report = [&](std::string what) {
    state.what = std::move(what);
    if (progress) progress(state);
  };
  if (options.fp32) {
    report("FP32 reference");
    Fp32Matmul fp32(net);
    result.fp32_accuracy = accuracy_of(net, images, labels, fp32, options.batch_size);
    ++state.done;
  }
  result.times.resize(options.t_inference.size());
  for (std::size_t i = 0; i < options.t_inference.size(); ++i)
    result.times[i].t_inference = options.t_inference[i];

  for (int trial = 0; trial < options.trials; ++trial) {
    report(concat("trial ", trial + 1, "/", options.trials, ": programming"));
    const ProgrammedChip chip(net, config, trial);
    const Index n = std::min<Index>(options.calibration_images, calibration_images.rows());
    const MatrixF calibration = config.calibrate ? MatrixF(calibration_images.topRows(n)) : MatrixF();
    const ConverterSetup converters(chip, config, &calibration);
    std::unique_ptr<ChipForward> chip_forward;
    for (std::size_t i = 0; i < options.t_inference.size(); ++i) {
      report(concat("trial ", trial + 1, "/", options.trials, ", t = ", options.t_inference[i],
                    " s"));
      const ChipSnapshot snapshot = chip.at(options.t_inference[i]);
      if (chip_forward)
        chip_forward->set_snapshot(snapshot);
      else
        chip_forward = std::make_unique<ChipForward>(chip, converters, snapshot);
      result.times[i].accuracy.push_back(
          accuracy_of(net, images, labels, *chip_forward, options.batch_size));
      ++state.done;
    }
  }
  for (TimeSummary& t : result.times) {
    double sum = 0;
    for (double a : t.accuracy) sum += a;
    t.mean = sum / t.accuracy.size();
    double squares = 0;
    for (double a : t.accuracy) squares += (a - t.mean) * (a - t.mean);
    t.std = t.accuracy.size() > 1 ? std::sqrt(squares / (t.accuracy.size() - 1)) : 0.0;
  }
  report("done");
  return result;
}

}  // namespace pcmsim::nets
