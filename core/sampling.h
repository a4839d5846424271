// Token sampling: greedy, temperature, top-k, top-p, from a seeded generator whose draws do
// not depend on the platform or on torch's global RNG (a seed names one output).
//
// Shapes: V vocab, N rows. Functions on logits/probabilities accept [V] or [..., V].
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur {

class LlamaModelImpl;

struct SamplingParams {
  double temperature = 1.0;  // <= 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: off; else keep the k most probable tokens
  double top_p = 1.0;        // 1: off; else keep the smallest set whose mass reaches p

  bool greedy() const { return temperature <= 0.0; }
  // "sampling: temperature -1 must be >= 0" style messages.
  absl::Status Validate() const;
  std::string ToString() const;  // "greedy" | "T=0.8 top-k=40 top-p=0.95"
};

// Keeps the k largest logits per row (ties go to the lower id, so exactly k survive) and
// sets the rest to -inf. k <= 0 or k >= V returns the input unchanged.
at::Tensor TopKFilter(const at::Tensor& logits, int64_t k);

// probs: a distribution per row. Keeps the smallest set of tokens, taken in descending
// probability order (ties: lower id first), whose cumulative mass reaches p, zeroes the
// rest and renormalises. p >= 1 returns the input unchanged.
at::Tensor TopPFilter(const at::Tensor& probs, double p);

// The distribution a sampler with `params` draws from: softmax(logits / T), then top-k,
// then top-p; float32 on the logits' device. Greedy: one-hot at the argmax. Speculative
// sampling uses this for both the target's p and the drafter's q.
at::Tensor SamplingProbs(const at::Tensor& logits, const SamplingParams& params);

// Argmax per row, ties to the lowest id: int64 [...].
at::Tensor GreedyTokens(const at::Tensor& logits);

class Sampler {
 public:
  explicit Sampler(uint64_t seed = 0) : rng_(seed) {}

  // Uniform double in [0, 1), 53 random bits.
  double Uniform();
  // Draws an id from one row of non-negative weights [V] (need not sum to 1; must have
  // positive mass, else the argmax is returned). Inverse CDF in double precision.
  int64_t SampleFromProbs(const at::Tensor& probs);
  // One id from logits [V] (or [1, V]) with `params`.
  int64_t Sample(const at::Tensor& logits, const SamplingParams& params);

  // Generator state as text (std::mt19937_64 stream format), for checkpoints.
  std::string State() const;
  absl::Status SetState(const std::string& state);

 private:
  std::mt19937_64 rng_;
};

// Plain autoregressive generation with the KV cache: one prefill forward over the prompt,
// then one forward per new token. The baseline that speculative decoding is measured against.
struct GenerateOptions {
  int64_t max_new = 128;
  SamplingParams sampling;
  uint64_t seed = 0;
  int64_t eos_id = -2;  // -2: the model config's eos_token_id; -1: never stop early
  std::vector<int64_t> stop_ids;  // further ids that end generation (a chat's end-of-turn)
};

struct GenerateResult {
  std::vector<int64_t> tokens;  // new tokens, without the EOS that stopped generation
  bool hit_eos = false;
  double prefill_s = 0;         // the prompt's forward
  double decode_s = 0;          // the one-token forwards (and sampling)
  int64_t decode_forwards = 0;
};

// prompt: token ids (at least one). Fails when prompt + max_new exceeds the model's
// max_position_embeddings or an id is outside the vocabulary. `on_token` sees each new
// token as it is produced (streaming output).
absl::StatusOr<GenerateResult> Generate(LlamaModelImpl& model, const std::vector<int64_t>& prompt,
                                        const GenerateOptions& opts,
                                        const std::function<void(int64_t)>& on_token = nullptr);

}  // namespace augur
