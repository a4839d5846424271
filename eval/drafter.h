// The drafter interface the speculative engine drives. A drafter guesses up to gamma next
// tokens of a context; the target verifies them in one forward.
//
// Shapes: G proposed tokens, V vocab.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/sampling.h"
#include "core/status.h"

namespace augur {

struct Draft {
  std::vector<int64_t> tokens;  // G <= gamma proposed ids (may be empty: no guess)
  // float32 [G,V]: the distribution each token was drawn from (q in the accept rule).
  // Undefined for deterministic drafters (retrieval): q is then one-hot at the token.
  // Greedy drafting may give its softmax instead (unused by greedy verification; token
  // trees take their top-k branches from it).
  at::Tensor probs;
  // Empty: the tokens form a chain. Else a tree (ProposeTree only): parents[i] is the index
  // of token i's parent in `tokens` (-1: it continues the context directly), parents before
  // children, siblings in the order the drafter prefers. Tree drafts are deterministic
  // (probs undefined): their sibling tokens are not independent draws.
  std::vector<int32_t> parents;
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual std::string name() const = 0;
  // A new generation starts with `prompt` (drafters with caches reset here).
  virtual absl::Status Begin(const std::vector<int64_t>& prompt) = 0;
  // Proposes up to `gamma` tokens continuing `context` (the prompt plus every token kept so
  // far). Sampling drafters draw from their own distribution under `params` with `sampler`.
  virtual Draft Propose(const std::vector<int64_t>& context, int64_t gamma, const SamplingParams& params,
                        Sampler& sampler) = 0;
  // For token-tree verification: the drafter may offer several futures at once (a Draft
  // with parents, at most `gamma` deep). Default: the chain of Propose.
  virtual Draft ProposeTree(const std::vector<int64_t>& context, int64_t gamma, const SamplingParams& params,
                            Sampler& sampler) {
    return Propose(context, gamma, params, sampler);
  }
};

}  // namespace augur
