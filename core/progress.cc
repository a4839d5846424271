#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <absl/strings/str_cat.h>

namespace augur {

std::string FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof(buf), "%lds", t);
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      tty_(::isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0) finish();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, const std::string& status) {
  done_ = done;
  status_ = status;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  // Redraw a terminal bar at most 10x a second; plain lines every 10 s for logs.
  if ((tty_ && since >= 0.1) || (!tty_ && since >= 10.0) || (total_ > 0 && done >= total_)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& status) {
  if (!status.empty()) status_ = status;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  const double el = elapsed_seconds();
  const double rate = el > 0 ? done_ / el : 0;
  std::string line = label_;
  if (total_ > 0) {
    const double frac = std::min(1.0, static_cast<double>(done_) / total_);
    if (tty_) {
      const int width = 24, fill = static_cast<int>(frac * width);
      absl::StrAppend(&line, " [", std::string(fill, '#'), std::string(width - fill, '.'), "]");
    }
    char buf[128];
    const double eta = rate > 0 ? (total_ - done_) / rate : NAN;
    std::snprintf(buf, sizeof(buf), " %lld/%lld %s %3.0f%% %.1f %s/s %s %s", static_cast<long long>(done_),
                  static_cast<long long>(total_), unit_.c_str(), 100 * frac, rate, unit_.c_str(),
                  final ? "took" : "eta", FormatDuration(final ? el : eta).c_str());
    line += buf;
  } else {
    char buf[96];
    std::snprintf(buf, sizeof(buf), " %lld %s %.1f %s/s %s", static_cast<long long>(done_), unit_.c_str(), rate,
                  unit_.c_str(), FormatDuration(el).c_str());
    line += buf;
  }
  if (!status_.empty()) absl::StrAppend(&line, "  ", status_);
  if (tty_) std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

JsonlLog::JsonlLog(const std::string& path, bool append)
    : out_(path, append ? std::ios::app : std::ios::trunc) {}

void JsonlLog::write(const nlohmann::json& record) {
  if (!out_.is_open()) return;
  out_ << record.dump() << '\n';
  out_.flush();
}

}  // namespace augur
