#include "devices/device_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <omp.h>

#include "core/error.h"
#include "core/rng.h"
#include "core/types.h"

namespace pcmsim::devices {
namespace {

constexpr const char* kWhere = "devices::device_report";
// Devices per work chunk: fixed, so chunk boundaries (and the order in which partial
// statistics are combined) never depend on the thread count.
constexpr std::size_t kReportChunk = 16384;

// Count, mean and sum of squared deviations of one chunk (or of combined chunks).
struct Moments {
  double n = 0, mean = 0, m2 = 0;
};

Moments chunk_moments(const float* v, std::size_t n) {
  Moments m;
  m.n = static_cast<double>(n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += v[i];
  m.mean = sum / m.n;
  double m2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = v[i] - m.mean;
    m2 += d * d;
  }
  m.m2 = m2;
  return m;
}

// Chan et al.'s pairwise update; applied in chunk order, so the result is deterministic.
void combine(Moments& a, const Moments& b) {
  if (b.n == 0) return;
  if (a.n == 0) { a = b; return; }
  const double n = a.n + b.n;
  const double delta = b.mean - a.mean;
  a.mean += delta * (b.n / n);
  a.m2 += b.m2 + delta * delta * (a.n * b.n / n);
  a.n = n;
}

double sample_std(const Moments& m) { return m.n > 1 ? std::sqrt(m.m2 / (m.n - 1)) : 0.0; }

std::string format_number(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::vector<std::vector<std::string>> report_cells(const std::vector<DeviceReportRow>& rows,
                                                   const char* fmt) {
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    cells.push_back({r.model, format_number("%.9g", core::uS_from_siemens(r.g_target)),
                     format_number("%.9g", r.t_inference), std::to_string(r.samples),
                     format_number(fmt, core::uS_from_siemens(r.mean)),
                     format_number(fmt, core::uS_from_siemens(r.std)),
                     format_number(fmt, r.nu_mean), format_number(fmt, r.nu_std)});
  }
  return cells;
}

const std::vector<std::string> kColumns = {"model",   "g_target_uS", "t_inference_s",
                                           "samples", "mean_uS",     "std_uS",
                                           "nu_mean", "nu_std"};

}  // namespace

void DeviceReportConfig::validate(double g_max) const {
  if (g_targets.empty()) core::throw_invalid(kWhere, "g_targets: empty list");
  if (t_inference.empty()) core::throw_invalid(kWhere, "t_inference: empty list");
  for (std::size_t i = 0; i < g_targets.size(); ++i) {
    const double g = g_targets[i];
    // Compared as the float the devices are programmed with.
    if (!(g >= 0 && static_cast<float>(g) <= static_cast<float>(g_max)))
      core::throw_invalid(kWhere, core::concat("g_target_uS = ", core::uS_from_siemens(g),
                                               ": must be in [0, ", core::uS_from_siemens(g_max),
                                               "] (the model's g_max)"));
  }
  for (double t : t_inference)
    if (!(t >= 0) || !std::isfinite(t))
      core::throw_invalid(kWhere,
                          core::concat("t_inference_s = ", t, ": must be finite and >= 0"));
  if (samples == 0) core::throw_invalid(kWhere, "samples = 0: must be >= 1");
}

std::vector<DeviceReportRow> device_report(const DeviceModel& model,
                                           const DeviceReportConfig& config) {
  config.validate(model.g_max());
  const std::size_t n = config.samples;
  const std::size_t chunks = (n + kReportChunk - 1) / kReportChunk;
  std::vector<float> g_prog(n), nu(n), q(n);
  std::vector<Moments> part(chunks);
  std::vector<DeviceReportRow> rows;
  const core::RngKey base{config.seed, core::Stage::device_report, 0, 0, 0, 0};

  for (std::size_t ti = 0; ti < config.g_targets.size(); ++ti) {
    const float g_target = static_cast<float>(config.g_targets[ti]);
    const core::RngKey program_key = base.with_layer(static_cast<std::uint32_t>(ti));
    // Program once (exceptions must not leave an OpenMP region: collect, rethrow after).
    std::exception_ptr error;
#pragma omp parallel
    {
      std::vector<float> targets(kReportChunk, g_target);
#pragma omp for schedule(static)
      for (std::size_t c = 0; c < chunks; ++c) {
        const std::size_t first = c * kReportChunk;
        const std::size_t m = std::min(kReportChunk, n - first);
        try {
          model.program(targets.data(), m, program_key, first,
                        {g_prog.data() + first, nu.data() + first, q.data() + first});
        } catch (...) {
#pragma omp critical(pcmsim_device_report_error)
          if (!error) error = std::current_exception();
        }
        part[c] = chunk_moments(nu.data() + first, m);
      }
    }
    if (error) std::rethrow_exception(error);
    Moments nu_stats;
    for (const auto& p : part) combine(nu_stats, p);

    // ... drift many: one snapshot per time, its own key (fresh read noise).
    for (std::size_t k = 0; k < config.t_inference.size(); ++k) {
      const double t = config.t_inference[k];
      const core::RngKey snapshot_key = program_key.with_sub(static_cast<std::uint32_t>(k + 1));
#pragma omp parallel
      {
        std::vector<float> g(kReportChunk);
#pragma omp for schedule(static)
        for (std::size_t c = 0; c < chunks; ++c) {
          const std::size_t first = c * kReportChunk;
          const std::size_t m = std::min(kReportChunk, n - first);
          try {
            model.read({g_prog.data() + first, nu.data() + first, q.data() + first}, m, t,
                       snapshot_key, first, g.data());
          } catch (...) {
#pragma omp critical(pcmsim_device_report_error)
            if (!error) error = std::current_exception();
          }
          part[c] = chunk_moments(g.data(), m);
        }
      }
      if (error) std::rethrow_exception(error);
      Moments g_stats;
      for (const auto& p : part) combine(g_stats, p);
      rows.push_back({model.name(), config.g_targets[ti], t, n, g_stats.mean,
                      sample_std(g_stats), nu_stats.mean, sample_std(nu_stats)});
    }
  }
  return rows;
}

std::string device_report_csv(const std::vector<DeviceReportRow>& rows) {
  std::string out;
  for (std::size_t c = 0; c < kColumns.size(); ++c) out += (c ? "," : "") + kColumns[c];
  out += "\n";
  // 7 significant digits: the devices are floats, and the Monte Carlo error is far larger.
  for (const auto& line : report_cells(rows, "%.7g")) {
    for (std::size_t c = 0; c < line.size(); ++c) out += (c ? "," : "") + line[c];
    out += "\n";
  }
  return out;
}

std::string device_report_table(const std::vector<DeviceReportRow>& rows) {
  const auto cells = report_cells(rows, "%.6g");
  std::vector<std::size_t> width(kColumns.size());
  for (std::size_t c = 0; c < kColumns.size(); ++c) {
    width[c] = kColumns[c].size();
    for (const auto& line : cells) width[c] = std::max(width[c], line[c].size());
  }
  // Text left-aligned (model), numbers right-aligned; two spaces between columns.
  auto emit = [&](const std::vector<std::string>& line) {
    std::string s;
    for (std::size_t c = 0; c < line.size(); ++c) {
      const std::string pad(width[c] - line[c].size(), ' ');
      s += c == 0 ? line[c] + pad : "  " + pad + line[c];
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  std::string out = emit(kColumns);
  for (const auto& line : cells) out += emit(line);
  return out;
}

}  // namespace pcmsim::devices
