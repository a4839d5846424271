// The speculative decoding engine: a drafter guesses gamma tokens, the target scores the
// pending token and all guesses in one forward on its KV cache, the accept rule keeps the
// longest agreed prefix plus one token of the target's own, and the cache rolls back to it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model.h"
#include "core/sampling.h"
#include "eval/drafter.h"

namespace augur {

struct SpecOptions {
  int64_t gamma = 4;
  int64_t max_new = 128;
  SamplingParams sampling;  // greedy when temperature <= 0
  uint64_t seed = 0;
  int64_t eos_id = -2;      // -2: the target config's eos_token_id; -1: never stop early
};

struct SpecStats {
  int64_t target_forwards = 0;  // verification forwards (the prefill not counted)
  int64_t proposed = 0;         // draft tokens offered to the target
  int64_t accepted = 0;         // of those, kept
  std::vector<int64_t> offered_at;   // [gamma]: how often a token was offered at offset i
  std::vector<int64_t> accepted_at;  // [gamma]: how often the token at offset i was kept
  double prefill_s = 0, draft_s = 0, verify_s = 0, total_s = 0;

  double alpha() const { return proposed > 0 ? static_cast<double>(accepted) / proposed : 0.0; }
  // Tokens per target forward, the target's own token included.
  double tau(int64_t new_tokens) const {
    return target_forwards > 0 ? static_cast<double>(new_tokens) / target_forwards : 0.0;
  }
};

struct SpecResult {
  std::vector<int64_t> tokens;  // new tokens, without the EOS that stopped generation
  bool hit_eos = false;
  SpecStats stats;
};

absl::StatusOr<SpecResult> SpeculativeGenerate(LlamaModelImpl& target, Drafter& drafter,
                                               const std::vector<int64_t>& prompt, const SpecOptions& opts);

}  // namespace augur
