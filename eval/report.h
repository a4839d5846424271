// The evaluation report (docs/FORMATS.md, "Eval report"): report.json holds every figure per
// prompt and aggregated, the exact configuration and the machine; report.md is the same as
// readable tables. scripts/plot_report.py draws PNGs from report.json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/status.h"
#include "eval/metrics.h"

namespace augur {

inline constexpr char kReportFormat[] = "augur-eval-report";
inline constexpr int64_t kReportVersion = 1;

// One drafter (or the target alone) at one gamma over all prompts.
struct RunReport {
  std::string label;    // short, for tables and plots: Drafter::name(); "target-only" for the baseline
  std::string drafter;  // Drafter::name()
  int64_t gamma = 0;
  std::string sampling;  // SamplingParams::ToString()
  std::vector<PromptRecord> prompts;
  std::string spec;     // the --drafter spec as given (full paths); "" for the baseline
};

struct CheckResult {
  bool ran = false;
  bool passed = true;
  std::string first_mismatch;  // "drafter X, prompt 3 (source), position 17: 42 != 99"
};

struct Report {
  std::string command = "eval";  // eval | bench
  std::string command_line;
  nlohmann::json config = nlohmann::json::object();   // every flag's value
  nlohmann::json machine = nlohmann::json::object();  // MachineInfo()
  nlohmann::json target = nlohmann::json::object();   // dir, parameters, fingerprint
  nlohmann::json cost = nlohmann::json::object();     // forward cost probe (ms by T)
  RunReport baseline;                                 // target-only decoding, same engine
  std::vector<RunReport> runs;
  CheckResult check;
};

// CPU model, cores, torch threads and version, augur version, device.
nlohmann::json MachineInfo(const std::string& augur_version, const std::string& device);

// Derived figures (summary, speedup, prediction) are computed here and written next to the
// raw counts and times; ReportFromJson reads the raw fields back.
nlohmann::json ReportToJson(const Report& report);
absl::StatusOr<Report> ReportFromJson(const nlohmann::json& j, const std::string& source);
std::string ReportMarkdown(const Report& report);

// Writes DIR/report.json and DIR/report.md, each atomically (creates DIR).
absl::Status WriteReport(const Report& report, const std::string& dir);

}  // namespace augur
