// The results file of `pcmsim tune` (nets/tune.h, docs/tune.md): HDF5 "pcmsim-tune" written
// atomically, a journal of the accuracies computed since (nets/journal.h, as the sweep's), and
// the CSV view.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "h5/hdf5_io.h"
#include "h5/settings_io.h"
#include "nets/journal.h"
#include "nets/results.h"
#include "nets/tune.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::tune";
constexpr const char* kJournalKind = "pcmsim-tune-journal";
using Assignment = std::map<std::string, LayerPrecision>;
using core::concat;

}  // namespace

TuneStore::TuneStore(std::string path, TuneMeta meta) : path_(std::move(path)), meta_(std::move(meta)) {
  core::require_path(kTag, "results file", path_);
}

void TuneStore::check_writable() const { check_results_path(path_, kTag); }

void TuneStore::lock() { lock_ = journal::lock_results(path_, "tune", kTag); }

bool TuneStore::exists() const {
  return std::filesystem::exists(path_) || std::filesystem::exists(path_ + ".journal");
}

void TuneStore::load_existing() {
  records_.clear();
  if (std::filesystem::exists(path_)) {
    const h5::File file = h5::File::open_read(path_);
    if (!file.has_attribute("format") || file.read_string_attribute("format") != "pcmsim-tune")
      core::throw_invalid(kTag, concat("'", path_, "' is not a pcmsim-tune results file"));
    if (file.read_string_attribute("fingerprint") != meta_.fingerprint)
      core::throw_invalid(kTag, concat("'", path_, "' holds another search (other model, data, "
                                       "trials, time or chip settings); resume needs the same "
                                       "command"));
    if (file.has_group("records")) {
      const auto set = file.read_string_dataset("records/set");
      const auto key = file.read_string_dataset("records/assignment");
      const auto trial = file.read_dataset<std::int64_t>("records/trial");
      const auto acc = file.read_dataset<double>("records/accuracy");
      const auto disc = file.read_dataset<double>("records/discordance");
      if (set.size() != key.size() || set.size() != trial.size() || set.size() != acc.size() ||
          set.size() != disc.size())
        core::throw_invalid(kTag, concat("'", path_, "': /records datasets differ in length"));
      for (std::size_t k = 0; k < set.size(); ++k)
        records_[{set[k], key[k], static_cast<int>(trial.data[k])}] =
            TuneRecord{acc.data[k], disc.data[k]};
    }
  }
  const std::string journal_path = path_ + ".journal";
  for (const std::string& line : journal::read(
           journal_path, journal::header(kJournalKind, meta_.fingerprint), "search", kTag)) {
    // "r SET TRIAL HEXFLOAT HEXFLOAT KEY" (accuracy, discordance; the key last: the rest of the
    // line).
    char set[4] = {0};
    int trial = 0, used = 0;
    TuneRecord r;
    if (std::sscanf(line.c_str(), "r %1s %d %la %la %n", set, &trial, &r.accuracy,
                    &r.discordance, &used) != 4 ||
        used <= 0 || used >= static_cast<int>(line.size()) || trial < 0 ||
        (std::string(set) != "v" && std::string(set) != "t"))
      core::throw_invalid(kTag, concat("'", journal_path, "': malformed line '", line, "'"));
    records_[{set, line.substr(static_cast<std::size_t>(used)), trial}] = r;
  }
}

TuneCache TuneStore::cache() {
  TuneCache c;
  c.lookup = [this](const std::string& set, const std::string& key,
                    int trial) -> std::optional<TuneRecord> {
    const auto it = records_.find({set, key, trial});
    if (it == records_.end()) return std::nullopt;
    return it->second;
  };
  c.record = [this](const std::string& set, const std::string& key, int trial,
                    const TuneRecord& r) {
    char head[128];
    std::snprintf(head, sizeof head, "r %s %d %a %a ", set.c_str(), trial, r.accuracy,
                  r.discordance);
    journal::append(path_ + ".journal", journal::header(kJournalKind, meta_.fingerprint),
                    head + key + "\n", kTag);
    records_[{set, key, trial}] = r;
  };
  return c;
}

namespace {

std::string csv_field(std::string text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string q = "\"";
  for (char c : text) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::string tune_csv(const TuneResult& result) {
  std::ostringstream out;
  out.precision(10);
  out << "set,phase,label,layer_precision,energy_per_inference_J,trials,acc_mean,acc_std,"
         "ci95_low,ci95_high,drop_mean,drop_bound,within_budget,accepted,pareto,chosen,"
         "drop_se_trials,drop_se_images\n";
  for (std::size_t i = 0; i < result.candidates.size(); ++i) {
    const TuneCandidate& c = result.candidates[i];
    out << "validation," << c.phase << ',' << csv_field(c.label) << ','
        << csv_field(assignment_key(c.assignment, c.digital_layers)) << ',' << c.energy << ','
        << c.accuracy.size()
        << ',' << c.summary.mean << ',' << c.summary.std << ',' << c.summary.ci_low << ','
        << c.summary.ci_high << ',' << c.drop.mean << ',' << c.drop.upper95 << ','
        << int(c.within_budget) << ',' << int(c.accepted) << ',' << int(c.pareto) << ','
        << int(i == result.best) << ',' << c.drop.se_trials << ',' << c.drop.se_images << '\n';
  }
  for (const TuneTestPoint& p : result.test)
    out << "test,test," << csv_field(p.label) << ','
        << csv_field(assignment_key(p.assignment, p.digital_layers))
        << ',' << p.energy << ',' << p.accuracy.size() << ',' << p.summary.mean << ','
        << p.summary.std << ',' << p.summary.ci_low << ',' << p.summary.ci_high << ','
        << p.drop.mean << ',' << p.drop.ci95_high << ",,,," << int(p.label == "tuned") << ','
        << p.drop.se_trials << ',' << p.drop.se_images << '\n';
  return out.str();
}

void TuneStore::write(const TuneResult& result, const SimulationConfig& config,
                      const EvaluationOptions& evaluation, const TuneOptions& options,
                      const cost::CostParams& cost_params) {
  write_hdf5_file(path_, kTag, [&](h5::File& file) {
    file.write_attribute("format", std::string("pcmsim-tune"));
    file.write_attribute("format_version", std::int64_t{1});
    file.write_attribute("fingerprint", meta_.fingerprint);
    file.write_attribute("git_revision", meta_.git_revision);
    file.write_attribute("model", meta_.model);
    file.write_attribute("validation_data", meta_.validation_data);
    file.write_attribute("test_data", meta_.test_data);
    file.write_attribute("validation_images", static_cast<std::int64_t>(result.validation_images));
    file.write_attribute("test_images", static_cast<std::int64_t>(result.test_images));
    file.write_attribute("trials", static_cast<std::int64_t>(evaluation.trials));
    file.write_attribute("t_inference", evaluation.t_inference.front());
    file.write_attribute("budget", options.budget);
    file.write_attribute("fp32_validation_accuracy", result.fp32_validation);
    file.write_attribute("fp32_test_accuracy", result.fp32_test);
    file.write_attribute("feasible", static_cast<std::int64_t>(result.feasible));
    file.write_attribute("chosen", static_cast<std::int64_t>(result.best));
    const TuneCandidate& best = result.candidates.at(result.best);
    file.write_attribute("layer_precision", layer_precision_text(best.assignment));
    file.write_attribute("digital_layers", best.digital_layers);
    file.write_attribute("run_options", result.run_options);
    {
      h5::Group g = file.create_group("config/simulation");
      h5::write_settings(g, config);
      h5::Group e = file.create_group("config/evaluation");
      h5::write_settings(e, evaluation);
      h5::Group t = file.create_group("config/tune");
      h5::write_settings(t, options);
      h5::Group c = file.create_group("config/cost");
      h5::write_settings(c, cost_params);
    }
    if (!records_.empty()) {
      std::vector<std::string> set, key;
      std::vector<std::int64_t> trial;
      std::vector<double> acc, disc;
      for (const auto& [k, r] : records_) {
        set.push_back(std::get<0>(k));
        key.push_back(std::get<1>(k));
        trial.push_back(std::get<2>(k));
        acc.push_back(r.accuracy);
        disc.push_back(r.discordance);
      }
      h5::Group rec = file.create_group("records");
      rec.write_string_dataset("set", set);
      rec.write_string_dataset("assignment", key);
      rec.write_dataset("trial", trial, {trial.size()});
      rec.write_dataset("accuracy", acc, {acc.size()});
      rec.write_dataset("discordance", disc, {disc.size()});
    }
    const std::size_t n = result.candidates.size();
    const std::size_t trials = static_cast<std::size_t>(evaluation.trials);
    std::vector<std::string> phase, label, key;
    std::vector<double> energy, accuracy, discordance, mean, stdev, lo, hi, drop, bound;
    std::vector<double> se_t, se_i;
    std::vector<std::int64_t> within, accepted, pareto, pareto_index;
    for (std::size_t i = 0; i < n; ++i) {
      const TuneCandidate& c = result.candidates[i];
      phase.push_back(c.phase);
      label.push_back(c.label);
      key.push_back(assignment_key(c.assignment, c.digital_layers));
      energy.push_back(c.energy);
      accuracy.insert(accuracy.end(), c.accuracy.begin(), c.accuracy.end());
      discordance.insert(discordance.end(), c.discordance.begin(), c.discordance.end());
      se_t.push_back(c.drop.se_trials);
      se_i.push_back(c.drop.se_images);
      mean.push_back(c.summary.mean);
      stdev.push_back(c.summary.std);
      lo.push_back(c.summary.ci_low);
      hi.push_back(c.summary.ci_high);
      drop.push_back(c.drop.mean);
      bound.push_back(c.drop.upper95);
      within.push_back(c.within_budget);
      accepted.push_back(c.accepted);
      pareto.push_back(c.pareto);
      if (c.pareto) pareto_index.push_back(static_cast<std::int64_t>(i));
    }
    h5::Group cand = file.create_group("candidates");
    cand.write_string_dataset("phase", phase);
    cand.write_string_dataset("label", label);
    cand.write_string_dataset("layer_precision", key);
    cand.write_dataset("energy_per_inference_J", energy, {n});
    cand.write_dataset("accuracy", accuracy, {n, trials});
    cand.write_dataset("discordance", discordance, {n, trials});
    cand.write_dataset("drop_se_trials", se_t, {n});
    cand.write_dataset("drop_se_images", se_i, {n});
    cand.write_dataset("acc_mean", mean, {n});
    cand.write_dataset("acc_std", stdev, {n});
    cand.write_dataset("ci95_low", lo, {n});
    cand.write_dataset("ci95_high", hi, {n});
    cand.write_dataset("drop_mean", drop, {n});
    cand.write_dataset("drop_bound", bound, {n});
    cand.write_dataset("within_budget", within, {n});
    cand.write_dataset("accepted", accepted, {n});
    cand.write_dataset("pareto", pareto, {n});
    // The Pareto front, by increasing energy.
    std::sort(pareto_index.begin(), pareto_index.end(), [&](std::int64_t a, std::int64_t b) {
      return energy[a] < energy[b];
    });
    h5::Group front = file.create_group("pareto");
    front.write_dataset("index", pareto_index, {pareto_index.size()});
    if (!result.test.empty()) {
      const std::size_t m = result.test.size();
      std::vector<std::string> tl, tk;
      std::vector<double> te, ta, tq, tm, ts, tlo, thi, td, tdl, tdh, tst, tsi;
      for (const TuneTestPoint& p : result.test) {
        tl.push_back(p.label);
        tk.push_back(assignment_key(p.assignment, p.digital_layers));
        te.push_back(p.energy);
        ta.insert(ta.end(), p.accuracy.begin(), p.accuracy.end());
        tq.insert(tq.end(), p.discordance.begin(), p.discordance.end());
        tst.push_back(p.drop.se_trials);
        tsi.push_back(p.drop.se_images);
        tm.push_back(p.summary.mean);
        ts.push_back(p.summary.std);
        tlo.push_back(p.summary.ci_low);
        thi.push_back(p.summary.ci_high);
        td.push_back(p.drop.mean);
        tdl.push_back(p.drop.ci95_low);
        tdh.push_back(p.drop.ci95_high);
      }
      h5::Group test = file.create_group("test");
      test.write_string_dataset("label", tl);
      test.write_string_dataset("layer_precision", tk);
      test.write_dataset("energy_per_inference_J", te, {m});
      test.write_dataset("accuracy", ta, {m, trials});
      test.write_dataset("discordance", tq, {m, trials});
      test.write_dataset("drop_se_trials", tst, {m});
      test.write_dataset("drop_se_images", tsi, {m});
      test.write_dataset("acc_mean", tm, {m});
      test.write_dataset("acc_std", ts, {m});
      test.write_dataset("ci95_low", tlo, {m});
      test.write_dataset("ci95_high", thi, {m});
      test.write_dataset("drop_mean", td, {m});
      test.write_dataset("drop_ci95_low", tdl, {m});
      test.write_dataset("drop_ci95_high", tdh, {m});
    }
  });
  std::remove((path_ + ".journal").c_str());
  write_text_file(csv_view_path(path_), tune_csv(result), kTag);
}

}  // namespace pcmsim::nets
