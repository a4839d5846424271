// The evaluation loop's parts: one timed generation as a PromptRecord, target-only
// decoding through the same engine (a drafter that proposes nothing), the greedy check
// against the plain decoding loop, and a probe of the target's forward cost by tokens.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "eval/drafter.h"
#include "eval/metrics.h"
#include "eval/prompts.h"
#include "eval/speculative.h"

namespace augur {

class Tokenizer;

// Target-only decoding: with it (and gamma 0) SpeculativeGenerate runs one 1-token target
// forward per new token on the same cache, prefill, sampling and bookkeeping code as every
// drafter, so the speedup compares like with like.
class NullDrafter : public Drafter {
 public:
  std::string name() const override { return "target-only"; }
  absl::Status Begin(const std::vector<int64_t>&) override { return absl::OkStatus(); }
  Draft Propose(const DraftRequest&) override { return {}; }
};

// Several drafters at once: SpeculativeGenerateTree merges their proposals into one token
// tree per step. RunPrompt recognises a set and runs the tree engine; used as a plain
// Drafter (SpeculativeGenerate) it proposes its first member's chain.
class DrafterSet : public Drafter {
 public:
  explicit DrafterSet(std::vector<std::unique_ptr<Drafter>> members);
  std::string name() const override;  // "a+b+c"
  absl::Status Begin(const std::vector<int64_t>& prompt) override;
  // As a chain drafter the set is its first member (layers, proposals and verdicts).
  std::vector<int64_t> target_layers() const override;
  Draft Propose(const DraftRequest& req) override;
  void Accepted(const Verified& step) override;
  std::vector<Drafter*> members() const;

 private:
  std::vector<std::unique_ptr<Drafter>> members_;
};

// One generation of `prompt` (seed = opts.seed) recorded with its statistics and text
// (`tokenizer` may be null: no text).
absl::StatusOr<PromptRecord> RunPrompt(DecodeModel& target, Drafter& drafter, const EvalPrompt& prompt,
                                       int64_t index, const SpecOptions& opts, const Tokenizer* tokenizer);

// Target-only greedy decoding with core/sampling.h Generate (a separate, plain loop).
absl::StatusOr<std::vector<int64_t>> ReferenceGreedy(LlamaModelImpl& target, const std::vector<int64_t>& prompt,
                                                     int64_t max_new, int64_t eos_id);

// -1 when equal; else the first position where they differ (a length difference counts
// at the shorter length).
int64_t FirstDifference(const std::vector<int64_t>& expected, const std::vector<int64_t>& got);

// Median ms of a target forward of T tokens (all T rows' logits, as verification reads them)
// on a cache warm with `prompt`, for each T; the target's cache is reset afterwards;
// as {"forward_ms": {"1": .., "5": ..}, "iters": n, "context": len}.
nlohmann::json ProbeForwardCost(DecodeModel& target, const std::vector<int64_t>& prompt,
                                const std::vector<int64_t>& tokens_per_forward, int64_t iters);

}  // namespace augur
