#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace pcmsim::cli {

std::string format_duration(double seconds) {
  char text[32];
  const long s = static_cast<long>(seconds + 0.5);
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%lds", s);
  return text;
}

ProgressLine::ProgressLine()
    : enabled_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(int done, int total, const std::string& what) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string eta = "?";
  if (done > 0 && total >= done) eta = format_duration(elapsed / done * (total - done));
  std::fprintf(stderr, "\r\033[K[%d/%d] %s  elapsed %s  ETA %s", done, total, what.c_str(),
               format_duration(elapsed).c_str(), eta.c_str());
  std::fflush(stderr);
  active_ = true;
}

void ProgressLine::finish() {
  if (active_) std::fprintf(stderr, "\r\033[K");
  active_ = false;
}

}  // namespace pcmsim::cli
