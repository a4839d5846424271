// KD losses over "buckets": the full vocabulary (online teacher) or the K cached ids plus
// one rest bucket (teacher store). Every loss is written once, on bucket log-probs
// logp, logq [N, B], so the two forms differ only in how the buckets are made.
//
// Temperature T on cached log-probs. The store keeps log p(x) at the store's temperature
// (normally 1) for the K ids and log p(rest) for the remainder. Tempering p(x)^(1/T) is
// exact on the K ids, but the rest bucket's tempered mass depends on how the remainder is
// spread, which was not kept; the bucket is treated as one outcome:
//   logp_T = log_softmax([logp_1/T, ..., logp_K/T, logp_rest/T])   over K+1 buckets.
// At T = 1 this is exact (the renormalisation only absorbs the float16 rounding of the
// stored values). The student side is exact at any T: logq_k = log_softmax(s/T) at the
// ids, and the rest bucket is logsumexp of the other V-K tempered logits minus log Z,
// computed directly rather than as log1p(-sum q_k), which loses everything when the rest
// is below float32's resolution next to 1.
//
// Zero-probability buckets: p log(p/q) is taken as 0 where p == 0 (a rest bucket of zero
// mass, a -inf logit), with the log-ratio masked before the product so the gradient stays
// finite (the "double where"). A bucket where p > 0 and q == 0 gives +inf, as it should.
#include "distill/kd_loss.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace augur::distill {
namespace {

// float32 for half/bfloat16/float32, double kept (gradient checks run in double).
c10::ScalarType ComputeType(const at::Tensor& t) {
  return t.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// A large finite negative that stands in for -inf where a logsumexp may see only masked
// entries: its gradient (a softmax over equal values, times a zero upstream gradient)
// stays finite. Half of lowest() so that subtracting log Z cannot overflow.
double MaskedLogit(c10::ScalarType t) {
  return t == torch::kDouble ? -0.5 * std::numeric_limits<double>::max()
                             : -0.5 * static_cast<double>(std::numeric_limits<float>::max());
}

std::string Shape(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

// sum_b x_b (log x_b - log y_b) over the last dim, 0 where x_b == 0.
at::Tensor XLogXOverY(const at::Tensor& logx, const at::Tensor& logy) {
  at::Tensor x = logx.exp();
  at::Tensor pos = x > 0;
  at::Tensor zero = torch::zeros_like(logx);
  at::Tensor ratio = torch::where(pos, logx, zero) - torch::where(pos, logy, zero);
  return torch::where(pos, x * ratio, zero).sum(-1);
}

at::Tensor BucketLoss(const at::Tensor& logp, const at::Tensor& logq, const KdOptions& opts) {
  switch (opts.kind) {
    case KdLossKind::kForwardKl:
      return XLogXOverY(logp, logq);
    case KdLossKind::kReverseKl:
      return XLogXOverY(logq, logp);
    case KdLossKind::kJsd: {
      const double beta = opts.jsd_beta;
      at::Tensor logm = torch::logaddexp(logp + std::log(beta), logq + std::log1p(-beta));
      return beta * XLogXOverY(logp, logm) + (1 - beta) * XLogXOverY(logq, logm);
    }
    case KdLossKind::kTvd:
      return 0.5 * (logp.exp() - logq.exp()).abs().sum(-1);
  }
  TORCH_CHECK(false, "kd loss: unknown kind");
}

// [..., V] -> [N, V] in the compute dtype.
at::Tensor Rows(const at::Tensor& t, c10::ScalarType type) { return t.reshape({-1, t.size(-1)}).to(type); }

std::vector<int64_t> Lead(const at::Tensor& t) {
  auto s = t.sizes().vec();
  s.pop_back();
  return s;
}

void CheckTopKShapes(const at::Tensor& student, const at::Tensor& ids, const at::Tensor& logprobs,
                     const at::Tensor& rest) {
  const int64_t N = student.numel() / std::max<int64_t>(1, student.size(-1));
  TORCH_CHECK(ids.dim() >= 1 && ids.sizes() == logprobs.sizes() && ids.numel() / std::max<int64_t>(1, ids.size(-1)) == N &&
                  rest.numel() == N && ids.size(-1) <= student.size(-1),
              "kd loss: top-k shapes disagree: student logits ", Shape(student), ", teacher ids ", Shape(ids),
              ", log-probs ", Shape(logprobs), ", rest log-mass ", Shape(rest),
              " (expected [N,V], [N,K], [N,K], [N] with K <= V)");
}

// Teacher bucket log-probs [N, K+1] at temperature T (see the file comment).
at::Tensor TeacherBuckets(const at::Tensor& logprobs, const at::Tensor& rest, double temperature,
                          c10::ScalarType type) {
  const int64_t K = logprobs.size(-1);
  at::Tensor lp = logprobs.reshape({-1, K}).to(type).detach();
  at::Tensor r = rest.reshape({-1, 1}).to(type).detach();
  return torch::log_softmax(torch::cat({lp, r}, -1) / temperature, -1);
}

// Student bucket log-probs [N, K+1]: the K ids, then the rest of the vocabulary.
at::Tensor StudentBuckets(const at::Tensor& student_logits, const at::Tensor& ids, double temperature,
                          c10::ScalarType type) {
  at::Tensor s = Rows(student_logits, type) / temperature;
  at::Tensor idx = ids.reshape({-1, ids.size(-1)}).to(torch::kLong);
  at::Tensor log_z = torch::logsumexp(s, -1, /*keepdim=*/true);
  at::Tensor at_ids = s.gather(-1, idx) - log_z;
  at::Tensor others = s.scatter(-1, idx, MaskedLogit(type));
  at::Tensor rest = torch::logsumexp(others, -1, /*keepdim=*/true) - log_z;
  return torch::cat({at_ids, rest}, -1);
}

}  // namespace

const std::vector<KdLossInfo>& KdLosses() {
  static const std::vector<KdLossInfo> table = {
      {KdLossKind::kForwardKl, "fkl", "forward KL(p_target || q_student): mode-covering, the classic KD loss"},
      {KdLossKind::kReverseKl, "rkl", "reverse KL(q_student || p_target): mode-seeking, puts mass where the target is sure"},
      {KdLossKind::kJsd, "jsd", "generalized Jensen-Shannon JSD(beta) between target and student (--jsd-beta)"},
      {KdLossKind::kTvd, "tvd", "total variation (1/2) sum |p - q| = 1 - expected acceptance: optimises acceptance directly"},
  };
  return table;
}

absl::StatusOr<KdLossKind> ParseKdLoss(const std::string& name) {
  std::string names;
  for (const KdLossInfo& l : KdLosses()) {
    if (name == l.name) return l.kind;
    absl::StrAppend(&names, names.empty() ? "" : ", ", l.name);
  }
  return absl::InvalidArgumentError(absl::StrCat("kd loss: unknown loss '", name, "' (one of ", names, ")"));
}

const char* KdLossName(KdLossKind kind) {
  for (const KdLossInfo& l : KdLosses())
    if (l.kind == kind) return l.name;
  return "?";
}

absl::Status KdOptions::Validate() const {
  if (!(temperature > 0) || !std::isfinite(temperature))
    return absl::InvalidArgumentError(absl::StrCat("kd loss: temperature ", temperature, " must be a finite number > 0"));
  if (kind == KdLossKind::kJsd && !(jsd_beta > 0 && jsd_beta < 1))
    return absl::InvalidArgumentError(absl::StrCat("kd loss: jsd beta ", jsd_beta, " must be in (0, 1)"));
  return absl::OkStatus();
}

at::Tensor KdLossFull(const at::Tensor& student_logits, const at::Tensor& teacher_logits, const KdOptions& opts) {
  TORCH_CHECK(student_logits.sizes() == teacher_logits.sizes() && student_logits.dim() >= 1,
              "kd loss: student logits ", Shape(student_logits), " and teacher logits ", Shape(teacher_logits),
              " must have the same shape [N,V]");
  const auto type = ComputeType(student_logits);
  at::Tensor logq = torch::log_softmax(Rows(student_logits, type) / opts.temperature, -1);
  at::Tensor logp = torch::log_softmax(Rows(teacher_logits, type).detach() / opts.temperature, -1);
  return BucketLoss(logp, logq, opts).view(Lead(student_logits));
}

at::Tensor KdLossTopK(const at::Tensor& student_logits, const at::Tensor& teacher_ids,
                      const at::Tensor& teacher_logprobs, const at::Tensor& teacher_rest_logmass,
                      const KdOptions& opts) {
  CheckTopKShapes(student_logits, teacher_ids, teacher_logprobs, teacher_rest_logmass);
  const auto type = ComputeType(student_logits);
  at::Tensor logp = TeacherBuckets(teacher_logprobs, teacher_rest_logmass, opts.temperature, type);
  at::Tensor logq = StudentBuckets(student_logits, teacher_ids, opts.temperature, type);
  return BucketLoss(logp, logq, opts).view(Lead(student_logits));
}

at::Tensor ExpectedAcceptanceFull(const at::Tensor& student_logits, const at::Tensor& teacher_logits) {
  TORCH_CHECK(student_logits.sizes() == teacher_logits.sizes() && student_logits.dim() >= 1,
              "expected acceptance: student logits ", Shape(student_logits), " and teacher logits ",
              Shape(teacher_logits), " must have the same shape [N,V]");
  torch::NoGradGuard no_grad;
  const auto type = ComputeType(student_logits);
  at::Tensor q = torch::softmax(Rows(student_logits, type), -1);
  at::Tensor p = torch::softmax(Rows(teacher_logits, type), -1);
  return torch::minimum(p, q).sum(-1).view(Lead(student_logits));
}

at::Tensor ExpectedAcceptanceTopK(const at::Tensor& student_logits, const at::Tensor& teacher_ids,
                                  const at::Tensor& teacher_logprobs, const at::Tensor& teacher_rest_logmass) {
  CheckTopKShapes(student_logits, teacher_ids, teacher_logprobs, teacher_rest_logmass);
  torch::NoGradGuard no_grad;
  const auto type = ComputeType(student_logits);
  at::Tensor p = TeacherBuckets(teacher_logprobs, teacher_rest_logmass, 1.0, type).exp();
  at::Tensor q = StudentBuckets(student_logits, teacher_ids, 1.0, type).exp();
  return torch::minimum(p, q).sum(-1).view(Lead(student_logits));
}

}  // namespace augur::distill
