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

// The target's hidden states of context tokens, for drafters that read them (feature
// drafters such as EAGLE's). Row i of each tensor belongs to context[begin + i].
struct TargetFeatures {
  int64_t begin = 0;
  std::vector<at::Tensor> layers;  // one per Drafter::target_layers() entry: float32 CPU [n, C]
  int64_t rows() const { return layers.empty() ? 0 : layers.front().size(0); }
};

// What the engine hands a drafter at each step.
struct DraftRequest {
  // The prompt plus every token kept so far; its last token is the pending one, which the next
  // target forward scores together with the draft.
  const std::vector<int64_t>& context;
  int64_t gamma;  // propose at most this many tokens (a tree: at most this deep)
  const SamplingParams& params;  // sampling drafters draw under these, with `sampler`
  Sampler& sampler;
  // The target's hidden states (the layers the drafter asked for) of the tokens verified since
  // the previous request, the prompt's after the prefill: rows for context[begin, size - 1),
  // every token but the pending one, whose states the next forward computes. Across the
  // requests of one generation the rows cover the context once, in order. Null when the
  // drafter asks for no layers.
  const TargetFeatures* features = nullptr;
};

// What became of a step, told to every drafter after the target verified it.
struct Verified {
  int64_t offered = 0;   // tokens this drafter proposed (a tree: its draft's nodes)
  int64_t accepted = 0;  // tokens on the accepted path that this drafter had proposed
  // Appended to the context: the accepted draft tokens, then the target's own token (cut at
  // EOS or max_new; the next request's context ends with them).
  std::vector<int64_t> kept;
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual std::string name() const = 0;
  // A new generation starts with `prompt` (drafters with caches reset here).
  virtual absl::Status Begin(const std::vector<int64_t>& prompt) = 0;
  // Target layers whose hidden states the drafter reads (DecodeOptions::hidden_layers
  // numbering: 0 = embeddings, i = output of layer i); the engine then fills
  // DraftRequest::features with them in this order. Empty (the default): none, and the
  // target computes no taps.
  virtual std::vector<int64_t> target_layers() const { return {}; }
  // Proposes up to `req.gamma` tokens continuing `req.context`.
  virtual Draft Propose(const DraftRequest& req) = 0;
  // For token-tree verification: the drafter may offer several futures at once (a Draft
  // with parents, at most `req.gamma` deep). Default: the chain of Propose.
  virtual Draft ProposeTree(const DraftRequest& req) { return Propose(req); }
  // After each verification: how much of this drafter's proposal the target kept. Drafters
  // that learn online or keep per-step state use it; the default ignores it.
  virtual void Accepted(const Verified& step) {}
};

}  // namespace augur
