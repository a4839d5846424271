// The evaluation loop behind `augur eval` and `augur bench`: load the target (eval/target.h),
// the prompts and each drafter (eval/drafter_registry.h); per prompt run target-only decoding
// and every (drafter, gamma) through the same speculative engine, interleaved so that outside
// load hits all sides alike; return the report (eval/report.h). cli/ only parses flags.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/sampling.h"
#include "eval/prompts.h"
#include "eval/report.h"
#include "eval/target.h"

namespace augur {

struct EvalConfig {
  std::string command = "eval";  // eval | bench: the report's and the messages' name
  std::string command_line;
  std::string augur_version;     // for the report's machine record
  TargetOptions target;          // capacity is computed from the prompts
  std::vector<std::string> drafters;  // --drafter specs (eval/drafter_registry.h)
  std::string prompts;           // .jsonl or token store
  PromptOptions prompt_options;
  std::string tokenizer;         // "" = the target checkpoint's
  std::vector<int64_t> gammas = {4};
  SamplingParams sampling;
  int64_t max_new = 128;
  uint64_t seed = 0;
  int64_t warmup = 1;
  int64_t probe_iters = 20;
  std::vector<int64_t> probe_sizes;  // forward sizes to probe besides 1 and gamma+1
  bool adaptive_gamma = false;
  int64_t tree_topk = 0;
  bool check = false;            // greedy outputs vs the engine's own target-only greedy (gamma 0)
  bool stop_at_eos = false;
  nlohmann::json config = nlohmann::json::object();  // what report.config records (every flag)
  bool progress = true;
};

// Runs the evaluation. A failed --check is not an error here: report.check says so.
absl::StatusOr<Report> Evaluate(const EvalConfig& cfg);

// The summary table (one line per run) as the CLI prints it.
std::string SummaryTable(const Report& report);

}  // namespace augur
