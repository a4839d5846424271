// Knowledge-distillation losses between a teacher distribution p and a student
// distribution q over the vocabulary, per position:
//   fkl  forward KL   KL(p || q) = sum_x p log(p/q)       (mode-covering)
//   rkl  reverse KL   KL(q || p) = sum_x q log(q/p)       (mode-seeking)
//   jsd  JSD(beta)    beta KL(p || m) + (1-beta) KL(q || m),  m = beta p + (1-beta) q
//   tvd  total variation  (1/2) sum_x |p - q|            (= 1 - alpha, see below)
// Both sides are softened by the same temperature (no T^2 factor: a trainer that wants the
// usual gradient scale multiplies by T^2 itself). The expected acceptance of a drafter
// q under a target p at one position is alpha = sum_x min(p, q) = 1 - TVD(p, q).
//
// Two forms: from full teacher logits (online: the target runs in the loop) and from a
// cached top-k + remainder (the teacher store): the vocabulary is coarsened to the K
// stored ids plus one "rest" bucket, whose teacher log-mass is stored and whose student
// mass is 1 - sum of the student's probabilities at the K ids.
//
// Shapes: N positions, V vocab, K top-k. Losses are per position, float32 [N].
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace augur::distill {

enum class KdLossKind { kForwardKl, kReverseKl, kJsd, kTvd };

// The table that drives --loss parsing, --help and names in metrics.
struct KdLossInfo {
  KdLossKind kind;
  const char* name;  // "fkl" | "rkl" | "jsd" | "tvd"
  const char* help;
};
const std::vector<KdLossInfo>& KdLosses();
absl::StatusOr<KdLossKind> ParseKdLoss(const std::string& name);
const char* KdLossName(KdLossKind kind);

struct KdOptions {
  KdLossKind kind = KdLossKind::kForwardKl;
  double temperature = 1.0;
  double jsd_beta = 0.5;
  // "kd loss: temperature 0 must be > 0" style messages (the losses themselves only
  // TORCH_CHECK shapes; options come from flags and are validated here first).
  absl::Status Validate() const;
};

// student_logits, teacher_logits: [N, V] (or [..., V]; the result then has shape [...]).
// Any float dtype; computed in float32 (double stays double, for gradient checks).
at::Tensor KdLossFull(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                      const KdOptions& opts);

// teacher_ids int64 (or int32) [N, K], teacher_logprobs float [N, K] (log-probs as stored,
// at the store's temperature, normally 1), teacher_rest_logmass float [N]. With
// opts.temperature T the teacher's K+1 buckets are logp/T renormalised (the rest bucket
// tempered as one outcome: exact at T = 1 and when K >= V-1); the student's buckets are
// exact at any T (kd_loss.cc explains).
at::Tensor KdLossTopK(const at::Tensor& student_logits, const at::Tensor& teacher_ids,
                      const at::Tensor& teacher_logprobs, const at::Tensor& teacher_rest_logmass,
                      const KdOptions& opts);

// Expected acceptance per position, sum_x min(p, q) at temperature 1 (no grad), float32 [N].
at::Tensor ExpectedAcceptanceFull(const at::Tensor& student_logits, const at::Tensor& teacher_logits);
// The same from a cached teacher: exact on the K ids, plus min(p_rest, q_rest) for the
// rest bucket (an upper bound of the true value; tight when the rest mass is small). The
// teacher's K+1 buckets are renormalised first, which only absorbs float16 rounding.
// Equals 1 - KdLossTopK(tvd) at temperature 1.
at::Tensor ExpectedAcceptanceTopK(const at::Tensor& student_logits, const at::Tensor& teacher_ids,
                                  const at::Tensor& teacher_logprobs,
                                  const at::Tensor& teacher_rest_logmass);

}  // namespace augur::distill
