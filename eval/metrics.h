// Figures of a speculative decoding evaluation: per generation and aggregated over prompts,
// plus the speedup predicted from the acceptance rate and the measured costs.
//
// Definitions (report.md repeats them):
//   alpha    = accepted / proposed draft tokens
//   tau      = new tokens / target forwards (the target's own token counted), prefill excluded
//   other_s  = total - prefill - draft - verify (engine overhead outside the timed phases)
//   speedup  = (new tokens / total s) / (baseline new tokens / baseline total s); with equal
//              lengths (EOS ignored, the default) this is baseline total s / total s.
//   predicted speedup (Leviathan et al. 2023, iid acceptance a per token, gamma g):
//              E[tokens per round] = (1 - a^(g+1)) / (1 - a)   (= g + 1 at a = 1)
//              speedup = E / (g c + v),  c = t_draft_step / t_target_1,
//              v = t_verify_forward(g+1 tokens) / t_target_1
//   where t_target_1 is one target-only decoding step of the baseline run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/speculative.h"

namespace augur {

// One prompt's generation.
struct PromptRecord {
  int64_t index = 0;        // position in the prompt list
  std::string source;       // "file.jsonl:3" or "store.h5:doc 12"
  int64_t prompt_tokens = 0;
  std::vector<int64_t> tokens;  // new tokens
  std::string text;             // their decoding ("" without a tokenizer)
  bool hit_eos = false;
  SpecStats stats;
};

// Sums over generations and the figures derived from them.
struct Summary {
  int64_t prompts = 0, new_tokens = 0, target_forwards = 0, proposed = 0, accepted = 0;
  int64_t rounds_with_draft = 0;  // verification rounds that offered >= 1 draft token
  std::vector<int64_t> offered_at, accepted_at;  // by draft position
  double prefill_s = 0, draft_s = 0, verify_s = 0, total_s = 0;

  double alpha() const { return proposed > 0 ? static_cast<double>(accepted) / proposed : 0.0; }
  double tau() const { return target_forwards > 0 ? static_cast<double>(new_tokens) / target_forwards : 0.0; }
  double other_s() const { return total_s - prefill_s - draft_s - verify_s; }
  double overhead_fraction() const { return total_s > 0 ? other_s() / total_s : 0.0; }
  double tokens_per_s() const { return total_s > 0 ? new_tokens / total_s : 0.0; }
  // accepted_at[i] / offered_at[i]: how often a draft offered with a token at position i had
  // tokens 1..i+1 all kept (the engine counts a keep at i only after keeps at 0..i-1); 0
  // where never offered.
  std::vector<double> acceptance_by_position() const;
  // Mean seconds per target forward (verification rounds) and per round of drafting.
  double verify_s_per_forward() const { return target_forwards > 0 ? verify_s / target_forwards : 0.0; }
  double draft_s_per_round() const { return target_forwards > 0 ? draft_s / target_forwards : 0.0; }
};

Summary Summarize(const PromptRecord& record);
Summary Summarize(const std::vector<PromptRecord>& records);

// (1 - a^(g+1)) / (1 - a); g + 1 when a = 1.
double ExpectedTokensPerRound(double alpha, int64_t gamma);
// E / (g c + v).
double PredictedSpeedup(double alpha, int64_t gamma, double c, double v);

struct Prediction {
  double alpha = 0;
  int64_t gamma = 0;
  double t_target_1_s = 0;       // one baseline decoding step (a 1-token target forward)
  double c = 0;                  // t_draft_step / t_target_1 (t_draft_step = draft per round / gamma)
  double v = 0;                  // t_verify_forward / t_target_1 (as run, gamma+1 tokens)
  double expected_tokens = 0;    // E[tokens per round]
  double speedup = 0;            // the predicted speedup
};
// From a drafter's run and the target-only baseline on the same prompts.
Prediction Predict(const Summary& spec, const Summary& baseline, int64_t gamma);

// Wall-clock speedup of `spec` over `baseline`: ratio of tokens per second.
double Speedup(const Summary& spec, const Summary& baseline);

}  // namespace augur
