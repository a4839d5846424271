// Accept rules of speculative decoding, as pure functions of the target's and drafter's
// outputs so that tests can drive them with exact distributions.
//
// Shapes: G draft tokens, V vocab. Target rows i = 0..G score the positions after the
// pending token and after each draft token: row i predicts the token that follows draft
// token i-1 (row 0 follows the last accepted token).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/sampling.h"

namespace augur {

struct Verdict {
  int64_t accepted = 0;  // leading draft tokens kept
  int64_t next = -1;     // the target's own token after them (a correction or the bonus)
};

// Greedy: keep draft tokens while each equals the target's argmax; then the argmax at the
// first disagreement (or after the last draft token). The output equals target-only greedy
// decoding token for token. target_logits [G+1,V].
Verdict VerifyGreedy(const at::Tensor& target_logits, const std::vector<int64_t>& draft);

// Sampling (Leviathan et al. / Chen et al.): accept draft token x_i with probability
// min(1, p_i(x_i) / q_i(x_i)); at the first rejection draw from norm(max(0, p_i - q_i));
// if all are accepted draw the bonus from p_G. Then every output token is distributed
// exactly as the target's p. p [G+1,V] and q [G,V] are probabilities (already tempered
// and filtered consistently); q undefined = one-hot at the draft tokens.
Verdict VerifySampling(const at::Tensor& p, const at::Tensor& q, const std::vector<int64_t>& draft,
                       Sampler& sampler);

}  // namespace augur
