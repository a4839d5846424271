// The speculative decoding engine: a drafter guesses gamma tokens, the target scores the
// pending token and all guesses in one forward on its KV cache, the accept rule keeps the
// longest agreed prefix plus one token of the target's own, and the cache rolls back to it.
// SpeculativeGenerateTree does the same with several drafters whose proposals form a token
// tree (eval/token_tree.h), verified in one forward with a tree attention mask.
//
// Adaptive gamma (SpecOptions::adaptive_gamma): before each step the engine picks
//   gamma = argmax over g in [1, gamma] of  (1 - a^(g+1)) / (1 - a)  /  (c * g + 1)
// the expected tokens per step under i.i.d. acceptance a, per unit of cost (one target
// forward = 1, one drafted token = c). a is an exponentially weighted estimate of the
// per-token acceptance, successes / trials with a trial per accepted token plus one per
// rejection (the geometric MLE), decayed by adaptive_decay per step, started from
// adaptive_alpha0 with a weight of two trials; c = (drafter seconds per drafted token) /
// (target seconds per verification forward), measured so far (0 before the first step, so
// the first step uses the full gamma). stats.gamma_used records each step's choice.
//
// The target is a DecodeModel (runtime/decode_model.h): either engine, its own KV cache; its
// capacity must hold prompt + max_new + gamma (tree: + tree_max_nodes) + 1 tokens.
//
// Near-tie policy (greedy), for targets whose rows are not exact (DecodeModel::rows_exact; the
// native engine's are, so it never needs the rule): a forward over gamma+1 tokens computes the
// same logits as a one-token forward only up to float rounding (different matmul shapes, a cache filled in
// different chunks), so two tokens whose logits are within rounding of each other could
// swap places and greedy speculative output would differ from target-only greedy. So every
// greedy decision whose top-2 logit margin is below near_tie_eps is re-taken from a
// canonical forward (DecodeModel::canonical_logits): a cache-free forward over the whole
// context up to that position (its last row), which depends only on the tokens, never on how the cache was filled or how
// many tokens were verified together. Decisions with a margin >= eps agree whenever the
// rounding noise is below eps/2, so with that bound the output equals target-only greedy
// decoding under the same rule (SpeculativeGenerate with gamma 0, the engine's own
// baseline) and the argmax of a full recompute at every step, token for token.
// stats.near_ties counts the recomputes, near_tie_flips those that changed the token.
// (core's Generate does not apply the rule: it agrees with the engine except at near-ties;
// compare speculative output with SpeculativeGenerate at gamma 0 for an exact check.)
//
// Drafters (eval/drafter.h) get a DraftRequest each step: the context, gamma, the sampling
// parameters and sampler, and, for drafters that name target_layers(), the target's hidden
// states of those layers for the tokens verified since their previous request (the prompt's
// after the prefill; a chain's pending token and accepted guesses, a tree's accepted path):
// every target forward then computes those taps (DecodeOptions::hidden_layers). After each
// verification every drafter is told what it offered, how much of it was kept and the tokens
// appended (Drafter::Accepted).
//
// Rollback: after each step the target cache keeps exactly the accepted tokens (truncate
// for a chain, DecodeModel::compact to the accepted path for a tree); drafters receive the
// accepted context on their next Propose and roll their own state back to the prefix
// they share with it (ArDrafter truncates its cache; retrieval drafters are stateless).
#pragma once

#include <cstdint>
#include <vector>

#include "core/model.h"
#include "runtime/decode_model.h"
#include "core/sampling.h"
#include "eval/drafter.h"

namespace augur {

struct SpecOptions {
  int64_t gamma = 4;
  int64_t max_new = 128;
  SamplingParams sampling;  // greedy when temperature <= 0
  uint64_t seed = 0;
  int64_t eos_id = -2;      // -2: the target config's eos_token_id; -1: never stop early
  // Adaptive gamma (rule above): gamma is then the largest gamma the engine may choose.
  bool adaptive_gamma = false;
  double adaptive_alpha0 = 0.6;  // prior per-token acceptance
  double adaptive_decay = 0.9;   // weight of the history per step
  // Greedy near-tie policy (above); 0 disables it. Float32 rounding noise in logits is
  // ~1e-5 for small models; raise it for reduced precision (bf16 on GPU: ~0.05).
  double near_tie_eps = 1e-3;
  // Tree mode: top-k alternatives of each sampling drafter's q at every chain position
  // (deterministic, one-hot draws) and the tree's size limit, pending token included.
  int64_t tree_topk = 0;
  int64_t tree_max_nodes = 64;
};

struct SpecStats {
  int64_t target_forwards = 0;  // verification forwards (the prefill not counted)
  int64_t proposed = 0;         // draft tokens offered to the target
  int64_t accepted = 0;         // of those, kept
  std::vector<int64_t> offered_at;   // [gamma]: how often a token was offered at offset i
  std::vector<int64_t> accepted_at;  // [gamma]: how often the token at offset i was kept
  double prefill_s = 0, draft_s = 0, verify_s = 0, total_s = 0;
  std::vector<int64_t> gamma_used;        // per step: the gamma drafted with (adaptive or fixed)
  int64_t tree_nodes = 0;                 // tokens verified besides the pending one (chain: = proposed)
  std::vector<int64_t> drafter_accepted;  // tree: per drafter, accepted tokens it had proposed
  int64_t near_ties = 0, near_tie_flips = 0;
  double near_tie_s = 0;                  // time in canonical recomputes (part of verify_s)

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

// The adaptive rule: the g in [1, gamma_max] maximising (1 - a^(g+1)) / (1 - a) / (c*g + 1)
// (a clamped to [0, 0.999]; ties to the smaller g).
int64_t ChooseGamma(double alpha, double cost_ratio, int64_t gamma_max);

// opts.gamma 0: target-only decoding by the same engine (one pending token per forward).
absl::StatusOr<SpecResult> SpeculativeGenerate(DecodeModel& target, Drafter& drafter,
                                               const std::vector<int64_t>& prompt, const SpecOptions& opts);
// The same on a LibTorch target (a TorchDecodeModel of just the capacity this call needs).
absl::StatusOr<SpecResult> SpeculativeGenerate(LlamaModelImpl& target, Drafter& drafter,
                                               const std::vector<int64_t>& prompt, const SpecOptions& opts);

// Several drafters at once: each proposes (Drafter::ProposeTree) up to gamma deep, the
// proposals (plus opts.tree_topk branches) merge into one token tree, the target verifies
// it in one forward; greedy keeps the longest agreeing path, sampling uses multi-draft
// rejection sampling (eval/token_tree.h); the cache is compacted to the accepted path.
// proposed/offered_at/accepted_at count tree depth (acceptance by position); tree_nodes
// counts every verified node. One chain drafter gives exactly SpeculativeGenerate's result.
absl::StatusOr<SpecResult> SpeculativeGenerateTree(DecodeModel& target, const std::vector<Drafter*>& drafters,
                                                   const std::vector<int64_t>& prompt, const SpecOptions& opts);
absl::StatusOr<SpecResult> SpeculativeGenerateTree(LlamaModelImpl& target, const std::vector<Drafter*>& drafters,
                                                   const std::vector<int64_t>& prompt, const SpecOptions& opts);

// Cache entries a target needs for prompts of up to `longest` tokens under `opts` (either entry
// point: gamma or the tree's node limit, plus the pending token).
int64_t SpecCapacity(int64_t longest, const SpecOptions& opts);

}  // namespace augur
