#include "eval/verify.h"

#include <ATen/ATen.h>

#include "core/status.h"

namespace augur {

Verdict VerifyGreedy(const at::Tensor& target_logits, const std::vector<int64_t>& draft) {
  const at::Tensor best = GreedyTokens(target_logits).to(at::kCPU);  // [G+1]
  const int64_t* b = best.data_ptr<int64_t>();
  Verdict v;
  while (v.accepted < static_cast<int64_t>(draft.size()) && b[v.accepted] == draft[v.accepted]) ++v.accepted;
  v.next = b[v.accepted];
  return v;
}

Verdict VerifySampling(const at::Tensor& p_in, const at::Tensor& q_in, const std::vector<int64_t>& draft,
                       Sampler& sampler) {
  const at::Tensor p = p_in.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor q = q_in.defined() ? q_in.to(at::kCPU, at::kDouble).contiguous() : at::Tensor();
  Verdict v;
  const int64_t g = static_cast<int64_t>(draft.size());
  for (int64_t i = 0; i < g; ++i) {
    const int64_t x = draft[i];
    const double px = p[i][x].item<double>();
    const double qx = q.defined() ? q[i][x].item<double>() : 1.0;
    // Accept with min(1, p/q). A token drawn from q has q > 0: zero means the drafter's q is
    // not the distribution it drew from (e.g. a reduced vocabulary mapped wrongly), and
    // accepting it would bias the output, so it is a checked error.
    AUGUR_CHECK(qx > 0.0, "speculative sampling: drafted token ", x, " at offset ", i,
                " has zero probability under the drafter's own q; the drafter did not draw it from q");
    const bool accept = sampler.Uniform() < std::min(1.0, px / qx);
    if (accept) {
      ++v.accepted;
      continue;
    }
    // Rejected: resample from the residual norm(max(0, p - q)).
    at::Tensor residual;
    if (q.defined()) {
      residual = (p[i] - q[i]).clamp_min(0.0);
    } else {
      residual = p[i].clone();
      residual[x] = 0.0;
    }
    if (residual.sum().item<double>() <= 0.0) residual = p[i];  // p == q: any draw from p is exact
    v.next = sampler.SampleFromProbs(residual);
    return v;
  }
  v.next = sampler.SampleFromProbs(p[g]);
  return v;
}

}  // namespace augur
