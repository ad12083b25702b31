// The mixed-precision search (nets/tune.h, docs/tune.md).
#include "nets/tune.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include "core/error.h"
#include "mapping/mapping_plan.h"
#include "nets/cost_input.h"
#include "nets/forward.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::tune";
using core::concat;
using Assignment = std::map<std::string, LayerPrecision>;

// The bits of a list, checked: integers 2..16, descending, without repeats.
std::vector<int> bit_list(const std::vector<double>& values, const char* name, bool need_one) {
  if (need_one && values.empty())
    core::throw_invalid(kTag, concat(name, " is empty: give at least one number of bits"));
  std::set<int, std::greater<int>> bits;
  for (double v : values) {
    if (!(v >= 2 && v <= 16) || v != std::floor(v))
      core::throw_invalid(kTag, concat(name, " = ", v, ": must be an integer number of bits in "
                                       "2..16"));
    bits.insert(static_cast<int>(v));
  }
  return {bits.begin(), bits.end()};
}

}  // namespace

DropStatistics drop_statistics(const std::vector<double>& accuracy,
                               const std::vector<double>& discordance, double fp32_accuracy,
                               Index images) {
  if (accuracy.empty() || accuracy.size() != discordance.size())
    core::throw_invalid(kTag, concat("drop_statistics: ", accuracy.size(), " accuracies and ",
                                     discordance.size(), " discordances (equal, at least one)"));
  if (images < 1) core::throw_invalid(kTag, concat("drop_statistics: images = ", images));
  const double n = static_cast<double>(accuracy.size());
  std::vector<double> drop;
  double second_moment = 0;  // mean over trials of the per-image variance of the difference
  for (std::size_t t = 0; t < accuracy.size(); ++t) {
    drop.push_back(fp32_accuracy - accuracy[t]);
    second_moment += std::max(0.0, discordance[t] - drop.back() * drop.back()) / n;
  }
  const PointSummary s = summarize(drop);
  const double a = accuracy.size() > 1 ? s.std * s.std / n : 0.0;
  const double b = images > 1 ? second_moment / static_cast<double>(images - 1) : 0.0;
  DropStatistics d;
  d.mean = 100 * s.mean;
  d.se_trials = 100 * std::sqrt(a);
  d.se_images = 100 * std::sqrt(b);
  d.upper95 = d.ci95_low = d.ci95_high = d.mean;
  if (a + b <= 0) return d;
  // Welch-Satterthwaite; a term without spread (one trial, one image) adds no degrees.
  const double denominator = (accuracy.size() > 1 ? a * a / (n - 1) : 0.0) +
                             (images > 1 ? b * b / static_cast<double>(images - 1) : 0.0);
  d.dof = (a + b) * (a + b) / denominator;
  // Rounded down (conservative) and capped where the quantile is the normal one.
  const int dof = static_cast<int>(std::min(std::max(1.0, std::floor(d.dof)), 1e9));
  const double se = 100 * std::sqrt(a + b);
  d.upper95 = d.mean + student_t_95(dof) * se;
  d.ci95_low = d.mean - student_t_975(dof) * se;
  d.ci95_high = d.mean + student_t_975(dof) * se;
  return d;
}

void TuneOptions::validate() const {
  if (!std::isfinite(budget) || budget < 0)
    core::throw_invalid(kTag, concat("budget = ", budget, ": must be a finite number of "
                                     "accuracy points >= 0"));
  bit_list(candidate_bits, "candidate_bits", true);
  bit_list(uniform_bits, "uniform_bits", false);
  if (validation_images < 1)
    core::throw_invalid(kTag, concat("validation_images = ", validation_images, ": must be >= 1"));
  std::set<std::string> seen;
  for (const std::string& name : tune_layers) {
    if (name.empty()) core::throw_invalid(kTag, "tune_layers: empty layer name");
    if (!seen.insert(name).second)
      core::throw_invalid(kTag, concat("tune_layers names layer '", name, "' twice"));
  }
}

namespace {

std::string joined(const std::vector<std::string>& items, const char* separator) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

// The configuration for an assignment: its converter bits, and its digital layers added to the
// mapper's (a digital layer has no converters, so no entry in layer_precision).
SimulationConfig assigned_config(const SimulationConfig& config, const Assignment& assignment,
                                 const std::vector<std::string>& digital) {
  SimulationConfig c = config;
  c.layer_precision = assignment;
  for (const std::string& name : digital) {
    c.layer_precision.erase(name);
    c.mapper.digital_layers.push_back(name);
  }
  return c;
}

}  // namespace

std::string assignment_key(const Assignment& assignment, const std::vector<std::string>& digital) {
  std::string key = joined(layer_precision_text(assignment), ";");
  if (!digital.empty()) key += (key.empty() ? "" : ";") + std::string("digital:") + joined(digital, ",");
  return key;
}

std::string layer_precision_option(const Assignment& assignment,
                                   const std::vector<std::string>& digital,
                                   const std::vector<std::string>& config_digital) {
  std::vector<std::string> all = config_digital;
  all.insert(all.end(), digital.begin(), digital.end());
  std::string text = all.empty() ? "" : "--digital-layers " + joined(all, ",");
  if (!assignment.empty())
    text += (text.empty() ? "" : " ") + std::string("--layer-precision ") +
            joined(layer_precision_text(assignment), ",");
  return text;
}

std::vector<std::string> tuned_layers(const Network& net, const SimulationConfig& config,
                                      const TuneOptions& options) {
  const mapping::MappingPlan plan =
      mapping::plan(placed_layer_matrices(net, config), config.chip, config.mapper);
  std::vector<std::string> analog;
  for (const mapping::LayerPlan& layer : plan.layers)
    if (!layer.digital) analog.push_back(layer.layer.name);
  if (options.tune_layers.empty()) {
    if (analog.empty()) core::throw_invalid(kTag, "the network has no analog layer to tune");
    return analog;
  }
  std::vector<std::string> names;
  for (const std::string& name : options.tune_layers) {
    if (std::find(analog.begin(), analog.end(), name) == analog.end()) {
      std::string list;
      for (const std::string& a : analog) list += (list.empty() ? "" : ", ") + a;
      core::throw_invalid(kTag, concat("tune_layers names layer '", name, "', which is not an "
                                       "analog matrix layer of the network (analog layers: ",
                                       list, ")"));
    }
  }
  // In the network's order, whatever order they were given in.
  for (const std::string& a : analog)
    if (std::find(options.tune_layers.begin(), options.tune_layers.end(), a) !=
        options.tune_layers.end())
      names.push_back(a);
  return names;
}

double assignment_energy(const Network& net, const SimulationConfig& config,
                         const cost::CostParams& params, const Assignment& assignment,
                         const std::vector<std::string>& digital) {
  return network_cost(net, assigned_config(config, assignment, digital), params)
      .energy_per_inference;
}

TuneResult tune(const TuneData& data, const SimulationConfig& config,
                const EvaluationOptions& evaluation, const TuneOptions& options,
                const cost::CostParams& cost_params, const TuneCache& cache,
                const ProgressCallback& progress, const TuneWorld& world) {
  options.validate();
  evaluation.validate();
  config.validate();
  cost_params.validate();
  if (!data.net || !data.validation_images || !data.validation_labels)
    core::throw_invalid(kTag, "the network and the validation images and labels are required");
  if (world.size < 1 || world.rank < 0 || world.rank >= world.size ||
      (world.size > 1 && !world.sum))
    core::throw_invalid(kTag, concat("world: rank ", world.rank, " of ", world.size,
                                     " processes (and a sum for more than one) expected"));
  if (evaluation.t_inference.size() != 1)
    core::throw_invalid(kTag, concat("t_inference: the search runs at one inference time, ",
                                     evaluation.t_inference.size(), " were given"));
  const Network& net = *data.net;
  const MatrixF& val_images = *data.validation_images;
  const std::vector<int>& val_labels = *data.validation_labels;
  if (val_images.rows() == 0) core::throw_invalid(kTag, "no validation images");
  if (static_cast<Index>(val_labels.size()) != val_images.rows())
    core::throw_invalid(kTag, concat(val_images.rows(), " validation images but ",
                                     val_labels.size(), " labels"));
  const bool with_test = data.test_images != nullptr;
  if (with_test && (!data.test_labels ||
                    static_cast<Index>(data.test_labels->size()) != data.test_images->rows() ||
                    data.test_images->rows() == 0))
    core::throw_invalid(kTag, "test images need one label each (and at least one image)");
  if (config.calibrate && (!data.calibration || data.calibration->rows() == 0))
    core::throw_invalid(kTag, "config.calibrate is set but no calibration images were given");
  for (const auto& entry : config.layer_precision)
    if (net.find_layer(entry.first) < 0)
      core::throw_invalid(kTag, concat("layer_precision names layer '", entry.first,
                                       "', which the network does not have"));

  const std::vector<std::string> layers = tuned_layers(net, config, options);
  const std::vector<int> bits = bit_list(options.candidate_bits, "candidate_bits", true);
  const std::vector<int> uniform = bit_list(options.uniform_bits, "uniform_bits", false);
  const int trials = evaluation.trials;
  const double t = evaluation.t_inference.front();
  const std::vector<std::string> all_analog = tuned_layers(net, config, TuneOptions{});

  TuneResult result;
  result.validation_images = val_images.rows();
  result.test_images = with_test ? data.test_images->rows() : 0;

  // Progress: the known work (sensitivity, uniform, test) plus the greedy steps' upper bound.
  const int dims = 2;
  const int sensitivity = static_cast<int>(layers.size()) * dims * (int(bits.size()) - 1);
  Progress state{0,
                 trials * (1 + 2 * sensitivity + static_cast<int>(uniform.size()) +
                           (with_test ? 1 + static_cast<int>(uniform.size()) : 0)),
                 ""};
  auto report = [&](const std::string& what) {
    state.what = what;
    if (progress) progress(state);
  };

  // One programmed chip and one snapshot per trial, made when first needed (a resumed search
  // whose accuracies are all journalled programs nothing).
  struct TrialChip {
    std::unique_ptr<ProgrammedChip> chip;
    std::unique_ptr<ChipSnapshot> snapshot;
  };
  // Per set of layers kept digital (a chip without their tiles; every other layer's programming is
  // keyed by its own index and so the same on each).
  std::map<std::vector<std::string>, std::vector<TrialChip>> chips;
  MatrixF calibration;
  if (config.calibrate)
    calibration = data.calibration->topRows(
        std::min<Index>(evaluation.calibration_images, data.calibration->rows()));

  // Which images FP32 classifies correctly (the discordance of each record is against these).
  std::vector<char> fp32_right_validation, fp32_right_test;

  // One accuracy, computed: the chip of the trial (programmed when first needed) read with the
  // assignment's converters.
  auto compute = [&](const std::string& set, const Assignment& assignment,
                     const std::vector<std::string>& digital, int trial,
                     const std::string& label) {
    report(concat(set == "v" ? "validation " : "test ", label, ", trial ", trial + 1, "/",
                  trials));
    const SimulationConfig c = assigned_config(config, assignment, digital);
    std::vector<TrialChip>& per_trial = chips[digital];
    per_trial.resize(static_cast<std::size_t>(trials));
    TrialChip& tc = per_trial[static_cast<std::size_t>(trial)];
    if (!tc.chip) {
      tc.chip = std::make_unique<ProgrammedChip>(net, c, trial);
      tc.snapshot = std::make_unique<ChipSnapshot>(tc.chip->at(t));
      ++result.programmings;
    }
    const ConverterSetup converters(*tc.chip, c, &calibration);
    ChipForward forward(*tc.chip, converters, *tc.snapshot);
    const MatrixF& images = set == "v" ? val_images : *data.test_images;
    const std::vector<int>& labels = set == "v" ? val_labels : *data.test_labels;
    const std::vector<char>& fp32_right = set == "v" ? fp32_right_validation : fp32_right_test;
    const std::vector<int> predicted = predict(net, images, forward, evaluation.batch_size);
    std::size_t right = 0, differ = 0;
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      const bool ok = predicted[i] == labels[i];
      right += ok;
      differ += ok != (fp32_right[i] != 0);
    }
    const double n = static_cast<double>(predicted.size());
    return TuneRecord{static_cast<double>(right) / n, static_cast<double>(differ) / n};
  };

  // The accuracies of a batch of (set, assignment, trial) jobs. Rank 0's journal answers what
  // it knows (and every rank learns it); the rest are dealt round-robin over the ranks in rounds
  // of one job per rank, each round summed over the ranks and journalled at once, so every rank
  // holds every accuracy, takes the same path through the search, and a stopped search loses at
  // most one round.
  struct Job {
    std::string set, label;
    const Assignment* assignment;
    const std::vector<std::string>* digital;
    int trial;
  };
  const int ranks = std::max(1, world.size);
  auto sum_over_ranks = [&](std::vector<double>& values) {
    if (ranks > 1) world.sum(values);
  };
  auto run_jobs = [&](const std::vector<Job>& jobs) {
    const std::size_t n = jobs.size();
    // The total is an estimate (digital probes are not in it): grow it rather than pass it.
    state.total = std::max(state.total, state.done + static_cast<int>(n));
    std::vector<std::string> keys;
    for (const Job& job : jobs) keys.push_back(assignment_key(*job.assignment, *job.digital));
    std::vector<double> known(3 * n, 0.0);  // [flag..., accuracy..., discordance...]
    if (world.rank == 0 && cache.lookup)
      for (std::size_t j = 0; j < n; ++j)
        if (const std::optional<TuneRecord> v =
                cache.lookup(jobs[j].set, keys[j], jobs[j].trial)) {
          known[j] = 1;
          known[n + j] = v->accuracy;
          known[2 * n + j] = v->discordance;
        }
    sum_over_ranks(known);
    std::vector<TuneRecord> values(n);
    std::vector<std::size_t> open;
    std::map<std::tuple<std::string, std::string, int>, std::size_t> first_of;
    std::vector<std::pair<std::size_t, std::size_t>> repeats;  // (job, the same job before)
    for (std::size_t j = 0; j < n; ++j) {
      const auto [it, fresh] = first_of.emplace(std::make_tuple(jobs[j].set, keys[j],
                                                                jobs[j].trial), j);
      if (!fresh) {
        repeats.emplace_back(j, it->second);
      } else if (known[j] != 0) {
        values[j] = TuneRecord{known[n + j], known[2 * n + j]};
        ++state.done;
      } else {
        open.push_back(j);
      }
    }
    const std::size_t r = static_cast<std::size_t>(ranks);
    for (std::size_t first = 0; first < open.size(); first += r) {
      const std::size_t count = std::min(r, open.size() - first);
      std::vector<double> round(2 * count, 0.0);  // [accuracy..., discordance...]
      const std::size_t mine = static_cast<std::size_t>(world.rank);
      if (mine < count) {
        const Job& job = jobs[open[first + mine]];
        const TuneRecord r =
            compute(job.set, *job.assignment, *job.digital, job.trial, job.label);
        round[mine] = r.accuracy;
        round[count + mine] = r.discordance;
      }
      sum_over_ranks(round);
      for (std::size_t k = 0; k < count; ++k) {
        const std::size_t j = open[first + k];
        values[j] = TuneRecord{round[k], round[count + k]};
        if (world.rank == 0 && cache.record)
          cache.record(jobs[j].set, keys[j], jobs[j].trial, values[j]);
        ++result.evaluations;
        ++state.done;
      }
    }
    for (const auto& [j, same] : repeats) {
      values[j] = values[same];
      ++state.done;
    }
    return values;
  };

  report("FP32 reference");
  {
    Fp32Matmul fp32(net);
    auto right = [&](const MatrixF& images, const std::vector<int>& labels,
                     std::vector<char>& out) {
      const std::vector<int> predicted = predict(net, images, fp32, evaluation.batch_size);
      std::size_t count = 0;
      for (std::size_t i = 0; i < predicted.size(); ++i) {
        out.push_back(predicted[i] == labels[i]);
        count += out.back();
      }
      return static_cast<double>(count) / static_cast<double>(predicted.size());
    };
    result.fp32_validation = right(val_images, val_labels, fp32_right_validation);
    if (with_test) result.fp32_test = right(*data.test_images, *data.test_labels, fp32_right_test);
  }

  // The trials of the k-th assignment of a batch's records, as per-trial lists.
  auto split_records = [&](const std::vector<TuneRecord>& values, std::size_t k,
                           std::vector<double>& accuracy, std::vector<double>& discordance) {
    for (std::size_t t = 0; t < static_cast<std::size_t>(trials); ++t) {
      const TuneRecord& r = values[k * static_cast<std::size_t>(trials) + t];
      accuracy.push_back(r.accuracy);
      discordance.push_back(r.discordance);
    }
  };

  // Candidates on the validation images, a batch at a time (an assignment seen before is not
  // evaluated again); returns their indices in result.candidates.
  struct Spec {
    std::string phase, label;
    Assignment assignment;
    std::vector<std::string> digital;
  };
  auto key_of = [](const Spec& spec) { return assignment_key(spec.assignment, spec.digital); };
  std::map<std::string, std::size_t> by_key;
  auto evaluate_all = [&](const std::vector<Spec>& specs) {
    std::vector<std::size_t> index(specs.size());
    std::vector<std::size_t> fresh;  // specs evaluated in this batch, the first of each key
    std::map<std::string, std::size_t> fresh_by_key;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const std::string key = key_of(specs[i]);
      if (const auto it = by_key.find(key); it != by_key.end()) {
        index[i] = it->second;
      } else if (!fresh_by_key.count(key)) {
        fresh_by_key[key] = i;
        fresh.push_back(i);
      }
    }
    std::vector<Job> jobs;
    for (std::size_t i : fresh)
      for (int trial = 0; trial < trials; ++trial)
        jobs.push_back({"v", specs[i].label, &specs[i].assignment, &specs[i].digital, trial});
    const std::vector<TuneRecord> values = run_jobs(jobs);
    for (std::size_t f = 0; f < fresh.size(); ++f) {
      const Spec& spec = specs[fresh[f]];
      TuneCandidate cand;
      cand.phase = spec.phase;
      cand.label = spec.label;
      cand.assignment = spec.assignment;
      cand.digital_layers = spec.digital;
      cand.energy = assignment_energy(net, config, cost_params, spec.assignment, spec.digital);
      split_records(values, f, cand.accuracy, cand.discordance);
      cand.summary = summarize(cand.accuracy);
      cand.drop = drop_statistics(cand.accuracy, cand.discordance, result.fp32_validation,
                                  val_images.rows());
      // A tolerance for the rounding of the accuracy fractions (k / N images).
      cand.within_budget = cand.drop.upper95 <= options.budget + 1e-9;
      result.candidates.push_back(std::move(cand));
      by_key[key_of(spec)] = result.candidates.size() - 1;
    }
    for (std::size_t i = 0; i < specs.size(); ++i)
      index[i] = by_key.at(key_of(specs[i]));
    return index;
  };
  auto evaluate = [&](const std::string& phase, const std::string& label,
                      const Assignment& assignment, const std::vector<std::string>& digital) {
    return evaluate_all({Spec{phase, label, assignment, digital}}).front();
  };

  // The baseline: every tuned layer at the largest candidate (other layers as configured).
  Assignment base = config.layer_precision;
  for (const std::string& name : layers) base[name] = LayerPrecision{bits.front(), bits.front()};
  const Assignment base_all = base;
  std::size_t baseline = evaluate("baseline", concat("all ", bits.front(), " bit"), base, {});
  result.feasible = result.candidates[baseline].within_budget;
  result.candidates[baseline].accepted = result.feasible;

  std::vector<std::string> digital;  // tuned layers kept digital from here on
  std::vector<std::string> analog_tuned = layers;
  // `digital` with `more` added, in the network's order, so that a set has one key.
  auto digital_with = [&](const std::vector<std::string>& more) {
    std::vector<std::string> set;
    for (const std::string& l : layers)
      if (std::find(digital.begin(), digital.end(), l) != digital.end() ||
          std::find(more.begin(), more.end(), l) != more.end())
        set.push_back(l);
    return set;
  };
  auto keep_digital = [&](const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      base.erase(name);
      analog_tuned.erase(std::find(analog_tuned.begin(), analog_tuned.end(), name));
    }
    digital = digital_with(names);
  };
  std::size_t current = baseline;  // the candidate the search goes on from

  // Digital where it is cheaper: a layer whose digital energy is below its analog energy even at
  // the lowest candidate bits is kept digital, as FP32 there is both cheaper and at least as
  // accurate (a small matrix read at many positions pays a tile read's fixed periphery each
  // time: a 3x3 stem conv). Taken when the result is within the budget, or more accurate than a
  // baseline that is not.
  if (options.allow_digital) {
    std::vector<std::string> cheaper;
    for (const std::string& name : layers) {
      Assignment lowest = base;
      lowest[name] = LayerPrecision{bits.back(), bits.back()};
      Assignment without = base;
      without.erase(name);
      if (assignment_energy(net, config, cost_params, without, {name}) <
          assignment_energy(net, config, cost_params, lowest))
        cheaper.push_back(name);
    }
    if (!cheaper.empty()) {
      Assignment without = base;
      for (const std::string& name : cheaper) without.erase(name);
      const std::size_t i = evaluate(
          "digital", concat(joined(cheaper, "+"), " digital (cheaper than analog)"), without,
          cheaper);
      TuneCandidate& c = result.candidates[i];
      if (c.within_budget || (!result.feasible &&
                              c.summary.mean >= result.candidates[baseline].summary.mean)) {
        keep_digital(cheaper);
        current = i;
        if (c.within_budget) {
          result.feasible = true;
          c.accepted = true;
          baseline = i;
        }
      }
    }
  }

  // Digital rescue: when even that misses, keep one more tuned layer digital at a time (the
  // probe within the budget of least energy, else the one that gains the most accuracy per
  // joule added) until the budget is met or no layer gains. The search goes on from there with
  // the rest.
  if (!result.feasible && options.allow_digital) {
    while (!analog_tuned.empty()) {
      std::vector<Spec> probes;
      std::vector<std::string> added;  // the layer each probe adds
      for (const std::string& name : analog_tuned) {
        Spec probe{"digital", "", base, digital_with({name})};
        probe.assignment.erase(name);
        probe.label = concat(joined(probe.digital, "+"), " digital");
        added.push_back(name);
        probes.push_back(std::move(probe));
      }
      const std::vector<std::size_t> index = evaluate_all(probes);
      const TuneCandidate& now = result.candidates[current];
      std::size_t pick = index.size();
      double best_score = 0;
      for (std::size_t p = 0; p < index.size(); ++p) {
        const TuneCandidate& c = result.candidates[index[p]];
        if (c.within_budget) {
          if (pick == index.size() || !result.candidates[index[pick]].within_budget ||
              c.energy < result.candidates[index[pick]].energy)
            pick = p;
        } else if (pick == index.size() || !result.candidates[index[pick]].within_budget) {
          const double gain = c.summary.mean - now.summary.mean;
          const double score = gain / std::max(c.energy - now.energy, 1e-30);
          if (gain > 0 && score > best_score) {
            best_score = score;
            pick = p;
          }
        }
      }
      if (pick == index.size()) break;  // no layer gains accuracy digitally
      current = index[pick];
      keep_digital({added[pick]});
      if (result.candidates[current].within_budget) {
        result.feasible = true;
        result.candidates[current].accepted = true;
        baseline = current;
        break;
      }
    }
  }

  auto set_bits = [](Assignment a, const std::string& name, int dim, int b) {
    (dim == 0 ? a[name].p_in : a[name].p_out) = b;
    return a;
  };
  const char* dim_name[2] = {"p_in", "p_out"};

  if (result.feasible) {
    // Sensitivity: one layer and one converter at a time at each lower candidate, the others at
    // the baseline: the accuracy it loses (points of the mean, >= 0).
    std::map<std::tuple<std::string, int, int>, double> loss;
    const double base_mean = result.candidates[baseline].summary.mean;
    std::vector<Spec> probes;
    std::vector<std::tuple<std::string, int, int>> probed;
    for (const std::string& name : analog_tuned)
      for (int dim = 0; dim < dims; ++dim)
        for (std::size_t k = 1; k < bits.size(); ++k) {
          probes.push_back({"sensitivity", concat(name, " ", dim_name[dim], " ", bits[k]),
                            set_bits(base, name, dim, bits[k]), digital});
          probed.emplace_back(name, dim, bits[k]);
        }
    const std::vector<std::size_t> probe_index = evaluate_all(probes);
    for (std::size_t p = 0; p < probes.size(); ++p)
      loss[probed[p]] =
          std::max(0.0, 100 * (base_mean - result.candidates[probe_index[p]].summary.mean));

    // Greedy: lower one converter of one layer by one candidate step at a time, taking the step
    // with the most energy saved per point of accuracy its sensitivity predicts; keep it when
    // the combined assignment stays within the budget, else never lower that converter again.
    Assignment current = base;
    std::map<std::pair<std::string, int>, std::size_t> level;  // index into bits
    std::set<std::pair<std::string, int>> frozen;
    constexpr double kMinLoss = 0.01;  // points: a step that loses nothing is not free of risk
    for (;;) {
      const double e_current = assignment_energy(net, config, cost_params, current, digital);
      double best_score = -1;
      std::pair<std::string, int> best_move;
      for (const std::string& name : analog_tuned)
        for (int dim = 0; dim < dims; ++dim) {
          const auto move = std::make_pair(name, dim);
          const std::size_t l = level[move];
          if (frozen.count(move) || l + 1 >= bits.size()) continue;
          const double saved =
              e_current - assignment_energy(net, config, cost_params,
                                            set_bits(current, name, dim, bits[l + 1]), digital);
          if (!(saved > 0)) {
            frozen.insert(move);
            continue;
          }
          const double lost = std::max(
              loss[{name, dim, bits[l + 1]}] - (l == 0 ? 0.0 : loss[{name, dim, bits[l]}]),
              0.0);
          const double score = saved / std::max(lost, kMinLoss);
          if (score > best_score) {
            best_score = score;
            best_move = move;
          }
        }
      if (best_score < 0) break;
      const auto& [name, dim] = best_move;
      const int b = bits[level[best_move] + 1];
      const Assignment next = set_bits(current, name, dim, b);
      const std::size_t i =
          evaluate("greedy", concat(name, " ", dim_name[dim], " ", b), next, digital);
      if (result.candidates[i].within_budget) {
        result.candidates[i].accepted = true;
        current = next;
        ++level[best_move];
      } else {
        frozen.insert(best_move);
      }
    }
  }

  // Uniform points: p_in = p_out = b on every analog layer.
  std::vector<Spec> uniform_specs;
  for (int b : uniform) {
    Assignment a = config.layer_precision;
    for (const std::string& name : all_analog) a[name] = LayerPrecision{b, b};
    uniform_specs.push_back({"uniform", concat("uniform ", b), a, {}});
  }
  const std::vector<std::size_t> uniform_index = evaluate_all(uniform_specs);

  // The choice: the least energy among the candidates within the budget that change only the
  // tuned layers, to candidate bits (a uniform point may qualify); the baseline when none is.
  auto is_tuned = [&](const std::string& name) {
    return std::find(layers.begin(), layers.end(), name) != layers.end();
  };
  auto eligible = [&](const TuneCandidate& c) {
    for (const std::string& name : c.digital_layers)
      if (!is_tuned(name) || c.assignment.count(name)) return false;
    for (const auto& [name, p] : c.assignment) {
      if (!is_tuned(name)) {
        const auto it = base_all.find(name);
        if (it == base_all.end() || it->second.p_in != p.p_in || it->second.p_out != p.p_out)
          return false;
      } else if (std::find(bits.begin(), bits.end(), p.p_in) == bits.end() ||
                 std::find(bits.begin(), bits.end(), p.p_out) == bits.end()) {
        return false;
      }
    }
    return c.assignment.size() + c.digital_layers.size() == base_all.size();
  };
  result.best = baseline;
  if (result.feasible)
    for (std::size_t i = 0; i < result.candidates.size(); ++i) {
      const TuneCandidate& c = result.candidates[i];
      if (c.within_budget && eligible(c) && c.energy < result.candidates[result.best].energy)
        result.best = i;
    }

  result.run_options = layer_precision_option(result.candidates[result.best].assignment,
                                              result.candidates[result.best].digital_layers,
                                              config.mapper.digital_layers);

  // Pareto front of (energy: lower, mean accuracy: higher).
  for (TuneCandidate& c : result.candidates) {
    c.pareto = true;
    for (const TuneCandidate& o : result.candidates)
      if (o.energy <= c.energy && o.summary.mean >= c.summary.mean &&
          (o.energy < c.energy || o.summary.mean > c.summary.mean)) {
        c.pareto = false;
        break;
      }
  }

  if (with_test) {
    std::vector<std::pair<std::string, const TuneCandidate*>> points{
        {"tuned", &result.candidates[result.best]}};
    for (std::size_t k = 0; k < uniform.size(); ++k)
      points.emplace_back(concat("uniform ", uniform[k]), &result.candidates[uniform_index[k]]);
    std::vector<Job> jobs;
    for (const auto& [label, c] : points)
      for (int trial = 0; trial < trials; ++trial)
        jobs.push_back({"t", label, &c->assignment, &c->digital_layers, trial});
    const std::vector<TuneRecord> values = run_jobs(jobs);
    for (std::size_t q = 0; q < points.size(); ++q) {
      TuneTestPoint p;
      p.label = points[q].first;
      p.assignment = points[q].second->assignment;
      p.digital_layers = points[q].second->digital_layers;
      p.energy = assignment_energy(net, config, cost_params, p.assignment, p.digital_layers);
      split_records(values, q, p.accuracy, p.discordance);
      p.summary = summarize(p.accuracy);
      p.drop = drop_statistics(p.accuracy, p.discordance, result.fp32_test,
                               data.test_images->rows());
      result.test.push_back(std::move(p));
    }
  }
  state.done = state.total;
  report("done");
  return result;
}

}  // namespace pcmsim::nets
