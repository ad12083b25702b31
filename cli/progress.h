// Progress of long runs on a terminal: one self-overwriting line on stderr with the count,
// the ETA and what is running. Silent when stderr is not a terminal (logs, CI, pipes).
#pragma once

#include <chrono>
#include <string>

namespace pcmsim::cli {

class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  void update(int done, int total, const std::string& what);
  void finish();

 private:
  bool enabled_;
  bool active_ = false;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);

}  // namespace pcmsim::cli
