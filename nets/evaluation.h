// Accuracy of a network on a PCM chip over inference times and Monte Carlo trials, beside the
// FP32 digital reference on the same data.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nets/dataset.h"
#include "nets/network.h"
#include "nets/simulation.h"

namespace pcmsim::nets {

struct EvaluationOptions {
  std::vector<double> t_inference{1.0, 3600.0, 86400.0, 31536000.0};  // seconds after programming
  int trials = 5;           // Monte Carlo trials (independently programmed chips), >= 1
  Index batch_size = 256;   // images per forward pass (fixed, so results do not depend on threads)
  Index calibration_images = 256;  // first images of the calibration set (when calibrating)
  bool fp32 = true;         // also evaluate the FP32 digital reference
  void validate() const;

  template <class V>
  static void fields(V& v) {
    using S = EvaluationOptions;
    v.field({"t_inference", "s", ">= 0, finite", "inference times after programming",
             core::Affects::time}, [](S& s) -> auto& { return s.t_inference; });
    v.field({"trials", "", ">= 1", "Monte Carlo trials (independently programmed chips)",
             core::Affects::programming}, [](S& s) -> auto& { return s.trials; });
    v.field({"batch_size", "", ">= 1", "images per forward pass (results do not depend on it)",
             core::Affects::converter}, [](S& s) -> auto& { return s.batch_size; });
    v.field({"calibration_images", "", ">= 1", "first images of the data used to calibrate",
             core::Affects::converter}, [](S& s) -> auto& { return s.calibration_images; });
    v.field({"fp32", "", "", "also evaluate the FP32 digital reference", core::Affects::converter},
            [](S& s) -> auto& { return s.fp32; });
  }
};

// One Monte Carlo trial at one inference time.
struct TrialResult {
  int trial = 0;
  double t_inference = 0;
  double accuracy = 0;  // top-1, in [0, 1]
};

struct TimeSummary {
  double t_inference = 0;
  std::vector<double> accuracy;  // per trial
  double mean = 0;
  double std = 0;                // sample standard deviation over trials (0 for one trial)
};

struct EvaluationResult {
  double fp32_accuracy = -1;  // -1 when not evaluated
  std::vector<TimeSummary> times;
  Index images = 0;
};

// Progress of a long evaluation: `done` of `total` forward passes, and what is running.
struct Progress {
  int done = 0;
  int total = 0;
  std::string what;
};
using ProgressCallback = std::function<void(const Progress&)>;

// Top-1 accuracy of `net` on `images` (normalised) through `provider`.
double accuracy_of(const Network& net, const MatrixF& images, const std::vector<int>& labels,
                   MatmulProvider& provider, Index batch_size);

// Programs `trials` chips (trial k uses programming keys of trial k), evaluates each at every
// time, and summarises. `calibration_images` (normalised, may be empty) are used when
// config.calibrate is set. Deterministic for a given seed whatever the thread count.
EvaluationResult evaluate(const Network& net, const MatrixF& images,
                          const std::vector<int>& labels, const SimulationConfig& config,
                          const EvaluationOptions& options, const MatrixF& calibration_images,
                          const ProgressCallback& progress = {});

}  // namespace pcmsim::nets
