// distill/kd_loss: every loss in both forms against a brute-force double-precision
// formula written with plain loops; the top-k form equals the full form when nothing is
// lost; gradients match central finite differences; alpha = 1 - TVD.
#include "distill/kd_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <vector>

namespace augur::distill {
namespace {

constexpr int64_t kN = 3, kV = 7;
const KdLossKind kKinds[] = {KdLossKind::kForwardKl, KdLossKind::kReverseKl, KdLossKind::kJsd, KdLossKind::kTvd};

std::vector<double> Softmax(const std::vector<double>& x, double T) {
  double mx = -std::numeric_limits<double>::infinity();
  for (double v : x) mx = std::max(mx, v / T);
  std::vector<double> p(x.size());
  double z = 0;
  for (size_t i = 0; i < x.size(); ++i) z += p[i] = std::exp(x[i] / T - mx);
  for (double& v : p) v /= z;
  return p;
}

// The definitions, term by term (0 log 0 = 0).
double Brute(KdLossKind kind, const std::vector<double>& p, const std::vector<double>& q, double beta) {
  auto kl = [](const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] > 0) s += a[i] * std::log(a[i] / b[i]);
    return s;
  };
  switch (kind) {
    case KdLossKind::kForwardKl: return kl(p, q);
    case KdLossKind::kReverseKl: return kl(q, p);
    case KdLossKind::kJsd: {
      std::vector<double> m(p.size());
      for (size_t i = 0; i < p.size(); ++i) m[i] = beta * p[i] + (1 - beta) * q[i];
      return beta * kl(p, m) + (1 - beta) * kl(q, m);
    }
    case KdLossKind::kTvd: {
      double s = 0;
      for (size_t i = 0; i < p.size(); ++i) s += std::abs(p[i] - q[i]);
      return 0.5 * s;
    }
  }
  return NAN;
}

std::vector<double> Row(const at::Tensor& t, int64_t n) {
  at::Tensor r = t[n].to(torch::kDouble).contiguous();
  return std::vector<double>(r.data_ptr<double>(), r.data_ptr<double>() + r.numel());
}

// A cached teacher from full logits: top-k ids, their log-probs, log of the rest (double).
struct Cached {
  at::Tensor ids, logprobs, rest;
};
Cached Cache(const at::Tensor& teacher_logits, int64_t k) {
  at::Tensor logp = torch::log_softmax(teacher_logits.to(torch::kDouble), -1);
  auto [vals, ids] = logp.topk(k, -1);
  at::Tensor rest = torch::log1p(-vals.exp().sum(-1).clamp_max(1.0));
  if (k == teacher_logits.size(-1)) rest = torch::full_like(rest, -std::numeric_limits<double>::infinity());
  return {ids, vals, rest};
}

// Brute force for the top-k form: teacher buckets (logp_k/T, rest/T) renormalised;
// student q_T at the ids and 1 - their sum (in double, where that subtraction is fine).
double BruteTopK(KdLossKind kind, const std::vector<double>& student, const std::vector<int64_t>& ids,
                 const std::vector<double>& lp, double rest, double T, double beta) {
  std::vector<double> t(lp);
  t.push_back(rest);
  std::vector<double> p = Softmax(t, T);  // exp(x/T) / sum exp(x/T) over the K+1 buckets
  std::vector<double> qv = Softmax(student, T), q;
  double in = 0;
  for (int64_t id : ids) {
    q.push_back(qv[id]);
    in += qv[id];
  }
  q.push_back(std::max(0.0, 1.0 - in));
  return Brute(kind, p, q, beta);
}

class KdLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);  // tiny tensors: thread hand-offs only cost time
    torch::manual_seed(7);
    student = torch::randn({kN, kV}, torch::kDouble) * 1.5;
    teacher = torch::randn({kN, kV}, torch::kDouble) * 1.5;
  }
  at::Tensor student, teacher;
};

TEST_F(KdLoss, FullFormMatchesBruteForce) {
  for (double T : {1.0, 2.5}) {
    for (KdLossKind kind : kKinds) {
      KdOptions o{kind, T, 0.3};
      at::Tensor got64 = KdLossFull(student, teacher, o);
      at::Tensor got32 = KdLossFull(student.to(torch::kFloat), teacher.to(torch::kFloat), o);
      ASSERT_EQ(got64.sizes(), (std::vector<int64_t>{kN}));
      EXPECT_EQ(got32.scalar_type(), torch::kFloat);
      for (int64_t n = 0; n < kN; ++n) {
        const double want = Brute(kind, Softmax(Row(teacher, n), T), Softmax(Row(student, n), T), 0.3);
        EXPECT_NEAR(got64[n].item<double>(), want, 1e-12) << KdLossName(kind) << " T " << T << " n " << n;
        EXPECT_NEAR(got32[n].item<double>(), want, 2e-6) << KdLossName(kind) << " T " << T << " n " << n;
        EXPECT_GT(want, 1e-3);  // the distributions differ: a zero loss would be a bug
      }
    }
  }
}

TEST_F(KdLoss, TopKFormMatchesBruteForce) {
  for (int64_t k : {1, 3}) {
    Cached c = Cache(teacher, k);
    for (double T : {1.0, 0.7, 2.5}) {
      for (KdLossKind kind : kKinds) {
        KdOptions o{kind, T, 0.3};
        at::Tensor got = KdLossTopK(student, c.ids, c.logprobs, c.rest, o);
        at::Tensor got32 = KdLossTopK(student.to(torch::kFloat), c.ids, c.logprobs.to(torch::kHalf).to(torch::kFloat),
                                      c.rest.to(torch::kFloat), o);
        for (int64_t n = 0; n < kN; ++n) {
          at::Tensor ids = c.ids[n].contiguous();
          std::vector<int64_t> idv(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + k);
          const double want = BruteTopK(kind, Row(student, n), idv, Row(c.logprobs, n), c.rest[n].item<double>(), T, 0.3);
          EXPECT_NEAR(got[n].item<double>(), want, 1e-12) << KdLossName(kind) << " k " << k << " T " << T;
          // float32 student, float16 teacher log-probs as the store keeps them.
          EXPECT_NEAR(got32[n].item<double>(), want, 5e-3 * std::max(1.0, want)) << KdLossName(kind);
        }
      }
    }
  }
}

TEST_F(KdLoss, TopKEqualsFullWhenNothingIsLost) {
  // K = V-1: the rest bucket is one token, so even tempering is exact. K = V: the rest
  // bucket is empty (teacher -inf, student 0 mass).
  for (int64_t k : {kV - 1, kV}) {
    Cached c = Cache(teacher, k);
    for (double T : {1.0, 2.0}) {
      for (KdLossKind kind : kKinds) {
        KdOptions o{kind, T, 0.5};
        at::Tensor full = KdLossFull(student, teacher, o);
        at::Tensor topk = KdLossTopK(student, c.ids, c.logprobs, c.rest, o);
        EXPECT_TRUE(torch::allclose(full, topk, 1e-9, 1e-12))
            << KdLossName(kind) << " k " << k << " T " << T << "\n" << full << topk;
      }
    }
  }
}

// Central differences in double against autograd, for every loss and both forms.
TEST_F(KdLoss, GradientsMatchFiniteDifferences) {
  const double h = 1e-6, tol = 1e-6;
  Cached c = Cache(teacher, 3);
  for (KdLossKind kind : kKinds) {
    for (int form = 0; form < 2; ++form) {
      KdOptions o{kind, 1.7, 0.3};
      auto loss = [&](const at::Tensor& s) {
        return form == 0 ? KdLossFull(s, teacher, o) : KdLossTopK(s, c.ids, c.logprobs, c.rest, o);
      };
      at::Tensor s = student.clone().requires_grad_(true);
      loss(s).sum().backward();
      at::Tensor grad = s.grad();
      ASSERT_TRUE(grad.defined());
      double max_err = 0, max_grad = 0;
      for (int64_t n = 0; n < kN; ++n) {
        for (int64_t v = 0; v < kV; ++v) {
          at::Tensor plus = student.clone(), minus = student.clone();
          plus[n][v] += h;
          minus[n][v] -= h;
          const double fd = (loss(plus).sum().item<double>() - loss(minus).sum().item<double>()) / (2 * h);
          max_err = std::max(max_err, std::abs(fd - grad[n][v].item<double>()));
          max_grad = std::max(max_grad, std::abs(fd));
        }
      }
      EXPECT_LT(max_err, tol) << KdLossName(kind) << (form == 0 ? " full" : " top-k");
      EXPECT_GT(max_grad, 1e-3) << KdLossName(kind);  // a gradient that is all zero would pass trivially
    }
  }
}

TEST_F(KdLoss, AlphaIsOneMinusTvd) {
  KdOptions tvd{KdLossKind::kTvd, 1.0, 0.5};
  at::Tensor alpha = ExpectedAcceptanceFull(student, teacher);
  EXPECT_TRUE(torch::allclose(alpha, 1 - KdLossFull(student, teacher, tvd), 0, 1e-12));
  for (int64_t n = 0; n < kN; ++n) {
    auto p = Softmax(Row(teacher, n), 1), q = Softmax(Row(student, n), 1);
    double want = 0;
    for (int64_t v = 0; v < kV; ++v) want += std::min(p[v], q[v]);
    EXPECT_NEAR(alpha[n].item<double>(), want, 1e-12);
  }
  Cached c = Cache(teacher, 3);
  at::Tensor alpha_k = ExpectedAcceptanceTopK(student, c.ids, c.logprobs, c.rest);
  EXPECT_TRUE(torch::allclose(alpha_k, 1 - KdLossTopK(student, c.ids, c.logprobs, c.rest, tvd), 0, 1e-12));
  // Coarsening can only merge disagreement away: the bucket alpha bounds the true one.
  EXPECT_TRUE((alpha_k >= alpha - 1e-12).all().item<bool>()) << alpha_k << alpha;
}

TEST_F(KdLoss, IdenticalDistributionsGiveZeroLossAndAlphaOne) {
  // (The top-k form at T != 1 tempers the rest bucket as one outcome, so there a student
  // equal to the teacher still differs from the coarsened teacher; T = 1 only.)
  Cached c = Cache(student, 3);
  for (KdLossKind kind : kKinds) {
    for (double T : {1.0, 3.0}) {
      KdOptions o{kind, T, 0.4};
      EXPECT_LT(KdLossFull(student, student, o).abs().max().item<double>(), 1e-12) << KdLossName(kind);
    }
    KdOptions o{kind, 1.0, 0.4};
    EXPECT_LT(KdLossTopK(student, c.ids, c.logprobs, c.rest, o).abs().max().item<double>(), 1e-12) << KdLossName(kind);
  }
  EXPECT_TRUE(torch::allclose(ExpectedAcceptanceFull(student, student), torch::ones({kN}, torch::kDouble)));
  EXPECT_TRUE(torch::allclose(ExpectedAcceptanceTopK(student, c.ids, c.logprobs, c.rest),
                              torch::ones({kN}, torch::kDouble)));
}

TEST_F(KdLoss, ZeroTeacherMassIsFiniteWithFiniteGradients) {
  // A teacher that rules tokens out (-inf logits): p log p = 0 there, and no NaN reaches
  // the student's gradient. Reverse KL is genuinely infinite (the student has mass where
  // the teacher has none).
  at::Tensor t = teacher.clone();
  t.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 3)}, -std::numeric_limits<double>::infinity());
  for (KdLossKind kind : kKinds) {
    KdOptions o{kind, 1.0, 0.5};
    at::Tensor s = student.clone().requires_grad_(true);
    at::Tensor l = KdLossFull(s, t, o);
    if (kind == KdLossKind::kReverseKl) {
      EXPECT_TRUE(torch::isposinf(l).all().item<bool>()) << l;
      continue;
    }
    l.sum().backward();
    for (int64_t n = 0; n < kN; ++n) {
      const double want = Brute(kind, Softmax(Row(t, n), 1), Softmax(Row(student, n), 1), 0.5);
      EXPECT_NEAR(l[n].item<double>(), want, 1e-12) << KdLossName(kind);
    }
    EXPECT_TRUE(torch::isfinite(s.grad()).all().item<bool>()) << KdLossName(kind);
  }
}

TEST_F(KdLoss, LeadingDimensionsAreKept) {
  KdOptions o{KdLossKind::kJsd, 1.0, 0.5};
  at::Tensor s = torch::randn({2, 4, kV}), t = torch::randn({2, 4, kV});
  at::Tensor l = KdLossFull(s, t, o);
  EXPECT_EQ(l.sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_TRUE(torch::allclose(l.reshape({-1}), KdLossFull(s.reshape({8, kV}), t.reshape({8, kV}), o)));
}

TEST(KdLossTable, NamesParseAndOptionsValidate) {
  ASSERT_EQ(KdLosses().size(), 4u);
  for (const KdLossInfo& l : KdLosses()) {
    auto k = ParseKdLoss(l.name);
    ASSERT_TRUE(k.ok());
    EXPECT_EQ(*k, l.kind);
    EXPECT_STREQ(KdLossName(l.kind), l.name);
  }
  auto bad = ParseKdLoss("kl");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fkl, rkl, jsd, tvd"), std::string::npos) << bad.status();
  EXPECT_TRUE((KdOptions{KdLossKind::kJsd, 2.0, 0.5}).Validate().ok());
  EXPECT_FALSE((KdOptions{KdLossKind::kJsd, 1.0, 1.0}).Validate().ok());
  EXPECT_FALSE((KdOptions{KdLossKind::kForwardKl, 0.0, 0.5}).Validate().ok());
}

}  // namespace
}  // namespace augur::distill
