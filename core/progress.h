// Progress reporting for long work: a redrawn bar on a terminal, plain periodic lines
// otherwise; and a JSONL metrics log.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

namespace augur {

class Progress {
 public:
  // `total` units of work named `unit` (steps, docs, sequences). total <= 0: unknown.
  Progress(std::string label, int64_t total, std::string unit = "it");
  ~Progress();
  // Sets the absolute position and an extra status text ("loss 3.21 tok/s 1510").
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");
  double elapsed_seconds() const;

 private:
  void draw(bool final);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Appends one JSON object per line; flushes each line so a killed run keeps its log.
class JsonlLog {
 public:
  JsonlLog() = default;
  explicit JsonlLog(const std::string& path, bool append = true);
  bool is_open() const { return out_.is_open(); }
  void write(const nlohmann::json& record);

 private:
  std::ofstream out_;
};

std::string FormatDuration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace augur
