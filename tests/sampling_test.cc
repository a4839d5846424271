// core/sampling: exact values for the filters, argmax limits, and draw frequencies against
// the distribution (chi-square with a fixed seed, so the test is deterministic).
#include "core/sampling.h"

#include "core/model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace augur {
namespace {

at::Tensor F(std::vector<float> v) { return torch::tensor(v, torch::kFloat); }

std::vector<float> Vec(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(SamplingParams, ValidateRejectsBadValues) {
  EXPECT_TRUE(SamplingParams{}.Validate().ok());
  EXPECT_TRUE((SamplingParams{0.0, 0, 1.0}).Validate().ok());
  EXPECT_FALSE((SamplingParams{-0.5, 0, 1.0}).Validate().ok());
  EXPECT_FALSE((SamplingParams{NAN, 0, 1.0}).Validate().ok());
  EXPECT_FALSE((SamplingParams{1.0, -1, 1.0}).Validate().ok());
  EXPECT_FALSE((SamplingParams{1.0, 0, 0.0}).Validate().ok());
  EXPECT_FALSE((SamplingParams{1.0, 0, 1.5}).Validate().ok());
  EXPECT_EQ((SamplingParams{0.0, 5, 0.5}).ToString(), "greedy");
  EXPECT_EQ((SamplingParams{0.8, 40, 0.95}).ToString(), "T=0.8 top-k=40 top-p=0.95");
}

TEST(TopP, KeepsExactlyTheSmallestSetReachingP) {
  // Sorted: 0.5 (id 2), 0.25 (id 0), 0.125 (id 3), 0.125 (id 1).
  at::Tensor probs = F({0.25f, 0.125f, 0.5f, 0.125f});
  // p = 0.75 is reached exactly by {2, 0}: the third token is not needed.
  EXPECT_EQ(Vec(TopPFilter(probs, 0.75)), (std::vector<float>{1.f / 3, 0.f, 2.f / 3, 0.f}));
  // Just above 0.75 needs one more; among the tied 0.125s the lower id (1) wins.
  EXPECT_EQ(Vec(TopPFilter(probs, 0.76)), (std::vector<float>{0.25f / 0.875f, 0.125f / 0.875f, 0.5f / 0.875f, 0.f}));
  // Smaller than the top token: only the top token.
  EXPECT_EQ(Vec(TopPFilter(probs, 0.1)), (std::vector<float>{0.f, 0.f, 1.f, 0.f}));
  // 1 is off.
  EXPECT_EQ(Vec(TopPFilter(probs, 1.0)), Vec(probs));
}

TEST(TopP, WorksPerRow) {
  at::Tensor probs = torch::stack({F({0.5f, 0.25f, 0.25f}), F({0.125f, 0.125f, 0.75f})});
  at::Tensor out = TopPFilter(probs, 0.6);
  EXPECT_EQ(Vec(out[0]), (std::vector<float>{2.f / 3, 1.f / 3, 0.f}));
  EXPECT_EQ(Vec(out[1]), (std::vector<float>{0.f, 0.f, 1.f}));
}

TEST(TopK, KeepsExactlyKWithTiesToLowerId) {
  at::Tensor logits = F({1.f, 3.f, 2.f, 3.f, 0.f});
  at::Tensor k2 = TopKFilter(logits, 2);
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(Vec(k2), (std::vector<float>{ninf, 3.f, ninf, 3.f, ninf}));
  at::Tensor k1 = TopKFilter(logits, 1);  // tie between ids 1 and 3: id 1 stays
  EXPECT_EQ(Vec(k1), (std::vector<float>{ninf, 3.f, ninf, ninf, ninf}));
  EXPECT_EQ(Vec(TopKFilter(logits, 0)), Vec(logits));
  EXPECT_EQ(Vec(TopKFilter(logits, 9)), Vec(logits));
}

TEST(SamplingProbs, TemperatureScalesLogits) {
  at::Tensor logits = F({0.f, std::log(3.f)});
  // T = 1: softmax = {1/4, 3/4}. T = 0.5 squares the odds: {1/10, 9/10}.
  auto p1 = Vec(SamplingProbs(logits, {1.0, 0, 1.0}));
  EXPECT_NEAR(p1[0], 0.25, 1e-6);
  EXPECT_NEAR(p1[1], 0.75, 1e-6);
  auto p05 = Vec(SamplingProbs(logits, {0.5, 0, 1.0}));
  EXPECT_NEAR(p05[0], 0.1, 1e-6);
  EXPECT_NEAR(p05[1], 0.9, 1e-6);
}

TEST(SamplingProbs, TemperatureToZeroEqualsArgmax) {
  torch::manual_seed(3);
  at::Tensor logits = torch::randn({4, 50});
  at::Tensor argmax = logits.argmax(-1);
  at::Tensor greedy = SamplingProbs(logits, {0.0, 0, 1.0});
  EXPECT_TRUE(torch::equal(greedy, torch::one_hot(argmax, 50).to(torch::kFloat)));
  at::Tensor cold = SamplingProbs(logits, {1e-4, 0, 1.0});
  EXPECT_TRUE(torch::allclose(cold, greedy, 0, 1e-6));
  Sampler s(7);
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(s.Sample(logits[r], {0.0, 0, 1.0}), argmax[r].item<int64_t>());
    EXPECT_EQ(s.Sample(logits[r], {1e-4, 0, 1.0}), argmax[r].item<int64_t>());
  }
}

TEST(SamplingProbs, GreedyTiesGoToLowestId) {
  EXPECT_EQ(GreedyTokens(F({0.f, 2.f, 2.f, 1.f})).item<int64_t>(), 1);
}

TEST(SamplingProbs, TopKThenTopPComposes) {
  // softmax of log-probs {0.4, 0.3, 0.2, 0.1}; top-k 3 -> {4/9, 3/9, 2/9}; top-p 0.7 keeps 2.
  at::Tensor logits = torch::log(F({0.4f, 0.3f, 0.2f, 0.1f}));
  auto p = Vec(SamplingProbs(logits, {1.0, 3, 0.7}));
  EXPECT_NEAR(p[0], 4.0 / 7, 1e-6);
  EXPECT_NEAR(p[1], 3.0 / 7, 1e-6);
  EXPECT_EQ(p[2], 0.f);
  EXPECT_EQ(p[3], 0.f);
}

TEST(Sampler, UniformIsInRangeAndSeeded) {
  Sampler a(11), b(11), c(12);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    double u = a.Uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    EXPECT_EQ(u, b.Uniform());
    if (u != c.Uniform()) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(Sampler, FrequenciesMatchProbabilitiesChiSquare) {
  const std::vector<double> p = {0.3, 0.2, 0.15, 0.12, 0.1, 0.08, 0.05, 0.0};
  at::Tensor probs = torch::tensor(p, torch::kDouble);
  Sampler s(1234);
  const int n = 100000;
  std::vector<int> count(p.size(), 0);
  for (int i = 0; i < n; ++i) ++count[s.SampleFromProbs(probs)];
  EXPECT_EQ(count[7], 0);  // zero probability is never drawn
  double chi2 = 0;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    double e = n * p[i];
    chi2 += (count[i] - e) * (count[i] - e) / e;
  }
  // 6 degrees of freedom; the 99.9% quantile is 22.46.
  EXPECT_LT(chi2, 22.46) << "chi-square " << chi2;
}

TEST(Sampler, SampleFollowsTopPDistribution) {
  // Sampling through logits with top-p must never draw a filtered token and must match the
  // renormalised mass of the kept ones.
  at::Tensor logits = torch::log(F({0.5f, 0.3f, 0.15f, 0.05f}));
  SamplingParams params{1.0, 0, 0.75};  // keeps {0, 1}: 0.5 < 0.75 <= 0.5 + 0.3
  Sampler s(99);
  const int n = 20000;
  std::vector<int> count(4, 0);
  for (int i = 0; i < n; ++i) ++count[s.Sample(logits, params)];
  EXPECT_EQ(count[2] + count[3], 0);
  double e0 = n * 0.625, e1 = n * 0.375;
  double chi2 = (count[0] - e0) * (count[0] - e0) / e0 + (count[1] - e1) * (count[1] - e1) / e1;
  EXPECT_LT(chi2, 10.83);  // 1 dof, 99.9%
}

TEST(Sampler, StateRoundTrips) {
  Sampler a(5);
  a.Uniform();
  std::string st = a.State();
  double next = a.Uniform();
  Sampler b(0);
  ASSERT_TRUE(b.SetState(st).ok());
  EXPECT_EQ(b.Uniform(), next);
  EXPECT_FALSE(b.SetState("not a state").ok());
}

TEST(Sampler, ZeroMassFallsBackToArgmax) {
  Sampler s(1);
  EXPECT_EQ(s.SampleFromProbs(F({0.f, 0.f, 0.f})), 0);
}

ModelConfig TinyModelConfig() {
  ModelConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.eos_token_id = 2;
  c.tie_word_embeddings = false;
  return c;
}

LlamaModel TinyModel() {
  LlamaModel m(TinyModelConfig());
  m->init_weights(1);
  // A wider output layer than the init so that the distribution is far from uniform and
  // greedy choices are not near-ties (logits std ~2 instead of ~0.1).
  torch::NoGradGuard g;
  m->lm_head->weight.mul_(20);
  return m;
}

TEST(Generate, SameSeedSameTokens) {
  LlamaModel m = TinyModel();
  GenerateOptions o;
  o.max_new = 20;
  o.sampling = {1.0, 0, 0.9};
  o.eos_id = -1;
  o.seed = 42;
  auto a = Generate(*m, {1, 5, 7}, o);
  auto b = Generate(*m, {1, 5, 7}, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens.size(), 20u);
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->decode_forwards, 19);  // the prefill yields the first token
  o.seed = 43;
  auto c = Generate(*m, {1, 5, 7}, o);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->tokens, c->tokens);
}

TEST(Generate, CachedDecodingEqualsFullRecompute) {
  // The KV-cache path (prefill + one token per forward) must pick the same tokens as
  // recomputing the whole sequence each step; with the same seed this holds for sampling too.
  LlamaModel m = TinyModel();
  m->eval();
  for (double temperature : {0.0, 1.0}) {
    GenerateOptions o;
    o.max_new = 12;
    o.sampling = {temperature, 0, 1.0};
    o.eos_id = -1;
    o.seed = 9;
    auto r = Generate(*m, {1, 3, 4, 8}, o);
    ASSERT_TRUE(r.ok());
    std::vector<int64_t> seq = {1, 3, 4, 8};
    Sampler s(9);
    torch::NoGradGuard g;
    for (int i = 0; i < 12; ++i) {
      at::Tensor logits = m->logits(torch::tensor(seq, torch::kLong).view({1, -1}));
      seq.push_back(s.Sample(logits[0][-1], o.sampling));
    }
    EXPECT_EQ(r->tokens, std::vector<int64_t>(seq.begin() + 4, seq.end())) << "temperature " << temperature;
  }
}

TEST(Generate, StopsAtEos) {
  LlamaModel m = TinyModel();
  GenerateOptions o;
  o.max_new = 10;
  o.sampling = {0.0, 0, 1.0};
  o.eos_id = -1;
  auto free_run = Generate(*m, {1, 6}, o);
  ASSERT_TRUE(free_run.ok());
  ASSERT_EQ(free_run->tokens.size(), 10u);
  o.eos_id = free_run->tokens[3];  // pretend the 4th token is EOS
  auto stopped = Generate(*m, {1, 6}, o);
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(stopped->hit_eos);
  // Stops at the first occurrence of that id, which is at or before index 3.
  auto first = std::find(free_run->tokens.begin(), free_run->tokens.end(), o.eos_id) - free_run->tokens.begin();
  EXPECT_EQ(stopped->tokens, std::vector<int64_t>(free_run->tokens.begin(), free_run->tokens.begin() + first));
  std::vector<int64_t> streamed;
  auto again = Generate(*m, {1, 6}, o, [&](int64_t id) { streamed.push_back(id); });
  EXPECT_EQ(streamed, stopped->tokens);
}

TEST(Generate, RefusesBadInputs) {
  LlamaModel m = TinyModel();
  GenerateOptions o;
  EXPECT_EQ(Generate(*m, {}, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Generate(*m, {1, 50}, o).status().message().find("outside the vocabulary"), std::string::npos);
  o.max_new = 62;  // 3 + 62 > 64 positions
  EXPECT_NE(Generate(*m, {1, 2, 3}, o).status().message().find("max_position_embeddings"), std::string::npos);
  o.max_new = 4;
  o.sampling.top_p = 0;
  EXPECT_NE(Generate(*m, {1}, o).status().message().find("top-p"), std::string::npos);
}

}  // namespace
}  // namespace augur
