// The speculative engine: greedy output equals the target's own greedy decoding; the
// sampling accept rule reproduces the target's distribution exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/model.h"
#include "core/sampling.h"
#include "eval/ar_drafter.h"
#include "eval/prompt_lookup.h"
#include "eval/speculative.h"
#include "eval/verify.h"
#include "tests/tiny_model.h"

namespace augur {
namespace {

ModelConfig Tiny(int64_t layers, int64_t hidden) { return tiny::Config(layers, hidden, 61); }
using tiny::Random;

std::vector<int64_t> Prompt(int64_t n, uint64_t seed) { return tiny::Prompt(n, seed); }

TEST(Speculative, GreedyEqualsTargetGreedy) {
  auto target = Random(Tiny(2, 32), 1, 3.0);
  // A drafter related to the target (same weights, fewer layers would need a copy; a
  // differently seeded model disagrees often, which exercises rejection and rollback).
  auto drafter_model = Random(Tiny(1, 32), 2, 3.0);
  for (int64_t gamma : {1, 3, 5}) {
    for (uint64_t s : {11u, 12u, 13u}) {
      const auto prompt = Prompt(7, s);
      GenerateOptions go;
      go.max_new = 40;
      go.sampling.temperature = 0;
      go.eos_id = -1;
      auto ref = Generate(*target, prompt, go);
      ASSERT_TRUE(ref.ok()) << ref.status();
      SpecOptions so;
      so.gamma = gamma;
      so.max_new = 40;
      so.sampling.temperature = 0;
      so.eos_id = -1;
      ArDrafter ar(drafter_model, 256);
      PromptLookupDrafter pl;
      for (Drafter* d : {static_cast<Drafter*>(&ar), static_cast<Drafter*>(&pl)}) {
        auto spec = SpeculativeGenerate(*target, *d, prompt, so);
        ASSERT_TRUE(spec.ok()) << spec.status();
        EXPECT_EQ(spec->tokens, ref->tokens) << d->name() << " gamma " << gamma << " seed " << s;
        EXPECT_LE(spec->stats.accepted, spec->stats.proposed);
      }
    }
  }
}

TEST(Speculative, SelfDraftingAcceptsEverything) {
  auto target = Random(Tiny(2, 32), 3, 3.0);
  ArDrafter self(target, 256);
  SpecOptions so;
  so.gamma = 4;
  so.max_new = 31;  // 6 rounds of 4 + 1, then a last round of 1
  so.sampling.temperature = 0;
  so.eos_id = -1;
  auto spec = SpeculativeGenerate(*target, self, Prompt(5, 4), so);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->tokens.size(), 31u);
  EXPECT_EQ(spec->stats.accepted, spec->stats.proposed);
  EXPECT_DOUBLE_EQ(spec->stats.alpha(), 1.0);
  EXPECT_EQ(spec->stats.target_forwards, 7);  // 6 x (4 + bonus) = 30 tokens, then 1
  EXPECT_NEAR(spec->stats.tau(31), 31.0 / 7.0, 1e-12);
}

TEST(PromptLookup, ProposesTheContinuationOfARepeatedNgram) {
  const std::vector<int64_t> ctx = {5, 6, 7, 8, 9, 1, 2, 5, 6, 7};
  EXPECT_EQ(PromptLookupDrafter::Lookup(ctx, 3, 3, 1), (std::vector<int64_t>{8, 9, 1}));
  // The most recent match wins; a shorter n-gram is used when the long one is absent.
  const std::vector<int64_t> ctx2 = {4, 1, 9, 3, 1, 8, 2, 2, 1};
  EXPECT_EQ(PromptLookupDrafter::Lookup(ctx2, 2, 3, 1), (std::vector<int64_t>{8, 2}));
  EXPECT_TRUE(PromptLookupDrafter::Lookup({1, 2, 3}, 4, 3, 1).empty());
  // Proposals stop at the end of the context.
  EXPECT_EQ(PromptLookupDrafter::Lookup({7, 3, 7}, 5, 2, 1), (std::vector<int64_t>{3, 7}));
}

TEST(Verify, GreedyKeepsTheAgreeingPrefix) {
  at::Tensor logits = at::zeros({4, 5});
  logits[0][2] = 1;  // target wants 2, draft 2: keep
  logits[1][4] = 1;  // target wants 4, draft 4: keep
  logits[2][0] = 1;  // target wants 0, draft 3: stop, next = 0
  logits[3][1] = 1;
  Verdict v = VerifyGreedy(logits, {2, 4, 3});
  EXPECT_EQ(v.accepted, 2);
  EXPECT_EQ(v.next, 0);
  v = VerifyGreedy(logits, {2, 4, 0});
  EXPECT_EQ(v.accepted, 3);
  EXPECT_EQ(v.next, 1);  // bonus
}

// Chi-square survival function for 3 degrees of freedom (V = 4).
double ChiSquareSf3(double x) { return std::erfc(std::sqrt(x / 2)) + std::sqrt(2 * x / M_PI) * std::exp(-x / 2); }

TEST(Verify, SamplingReproducesTheTargetDistribution) {
  // Position-dependent target P_k and drafter Q_k over V = 4 tokens (independent of the
  // context), so output token k must be distributed exactly as P_k.
  const at::Tensor P = at::tensor({0.5, 0.2, 0.2, 0.1, 0.05, 0.05, 0.6, 0.3, 0.25, 0.25, 0.25, 0.25,
                                   0.7, 0.1, 0.1, 0.1, 0.1, 0.7, 0.1, 0.1}, at::kDouble).view({5, 4});
  const at::Tensor Q = at::tensor({0.1, 0.6, 0.2, 0.1, 0.4, 0.4, 0.1, 0.1, 0.05, 0.05, 0.1, 0.8,
                                   0.25, 0.25, 0.25, 0.25, 0.3, 0.3, 0.2, 0.2}, at::kDouble).view({5, 4});
  Sampler sampler(123);
  const int64_t n = 20000, gamma = 2;
  std::vector<std::array<int64_t, 4>> counts(3, {0, 0, 0, 0});
  for (int64_t trial = 0; trial < n; ++trial) {
    std::vector<int64_t> out;
    while (out.size() < 3) {
      const int64_t k = static_cast<int64_t>(out.size());
      std::vector<int64_t> draft;
      for (int64_t i = 0; i < gamma; ++i) draft.push_back(sampler.SampleFromProbs(Q[k + i]));
      const Verdict v = VerifySampling(P.narrow(0, k, gamma + 1), Q.narrow(0, k, gamma), draft, sampler);
      for (int64_t i = 0; i < v.accepted; ++i) out.push_back(draft[i]);
      out.push_back(v.next);
    }
    for (int pos = 0; pos < 3; ++pos) ++counts[pos][out[pos]];
  }
  for (int pos = 0; pos < 3; ++pos) {
    double chi2 = 0;
    for (int x = 0; x < 4; ++x) {
      const double expected = n * P[pos][x].item<double>();
      chi2 += (counts[pos][x] - expected) * (counts[pos][x] - expected) / expected;
    }
    EXPECT_GT(ChiSquareSf3(chi2), 0.001) << "position " << pos << " chi2 " << chi2;
  }
  // The check has power: the drafter's own distribution is rejected at position 0.
  double chi2_q = 0;
  for (int x = 0; x < 4; ++x) {
    const double expected = n * Q[0][x].item<double>();
    chi2_q += (counts[0][x] - expected) * (counts[0][x] - expected) / expected;
  }
  EXPECT_LT(ChiSquareSf3(chi2_q), 1e-6);
}

// A reduced draft vocabulary: the drafter's q is zero on token 2 (outside its subset), so it
// never proposes it; the output must still follow P exactly, token 2 included.
TEST(Verify, SamplingWithADraftVocabularySubsetReproducesTheTarget) {
  const at::Tensor P = at::tensor({0.3, 0.2, 0.4, 0.1, 0.1, 0.3, 0.5, 0.1, 0.25, 0.25, 0.25, 0.25}, at::kDouble)
                           .view({3, 4});
  const at::Tensor Q = at::tensor({0.5, 0.3, 0.0, 0.2, 0.2, 0.6, 0.0, 0.2}, at::kDouble).view({2, 4});
  Sampler sampler(321);
  const int64_t n = 20000;
  std::array<int64_t, 4> counts = {0, 0, 0, 0};
  for (int64_t trial = 0; trial < n; ++trial) {
    const int64_t x = sampler.SampleFromProbs(Q[0]);
    ASSERT_NE(x, 2);
    const Verdict v = VerifySampling(P.narrow(0, 0, 2), Q.narrow(0, 0, 1), {x}, sampler);
    ++counts[v.accepted > 0 ? x : v.next];
  }
  double chi2 = 0;
  for (int x = 0; x < 4; ++x) {
    const double expected = n * P[0][x].item<double>();
    chi2 += (counts[x] - expected) * (counts[x] - expected) / expected;
  }
  EXPECT_GT(ChiSquareSf3(chi2), 0.001) << "chi2 " << chi2;
  EXPECT_GT(counts[2], n / 3);  // the token the drafter cannot propose comes from the residual
}

}  // namespace
}  // namespace augur
