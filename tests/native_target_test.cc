// The native engine as the speculative engine's target (runtime/decode_model.h contract): rows
// of a multi-token forward equal one-token forwards bit for bit (fp32, int8, int4), a tree
// forward compacted to one path continues exactly as that path decoded alone, hidden-state
// taps match LibTorch's, and greedy speculative output on a native target equals the same
// engine's target-only output token for token with no near-tie recompute.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <random>

#include "eval/ar_drafter.h"
#include "eval/harness.h"
#include "eval/prompt_lookup.h"
#include "eval/speculative.h"
#include "eval/token_tree.h"
#include "runtime/native_llama.h"
#include "runtime/qmodel.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

ModelConfig Small(int64_t layers = 2) {
  ModelConfig c;
  c.vocab_size = 131;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 256;
  c.rope_theta = 500.0;
  c.tie_word_embeddings = true;
  return c;
}

LlamaModel Random(const ModelConfig& c, uint64_t seed) {
  LlamaModel m(c);
  m->init_weights(seed);
  torch::NoGradGuard g;
  for (auto& p : m->named_parameters()) p.value().mul_(2.5);  // logits of order 1
  m->eval();
  return m;
}

// "" = fp32; else every linear (head included) quantized round-to-nearest.
LlamaModel Quantized(LlamaModel m, const std::string& scheme) {
  if (scheme.empty()) return m;
  torch::NoGradGuard g;
  QuantizedLinears linears;
  for (const LinearSlot& s : ModelLinears(m, /*with_head=*/true))
    linears.emplace(s.name, QuantizeRtn(s.weight.detach(), ParseScheme(scheme).value()));
  InstallQuantized(m, linears);
  return m;
}

std::vector<int64_t> Tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out(n);
  for (auto& t : out) t = static_cast<int64_t>(rng() % vocab);
  return out;
}

bool BitEqual(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return x.sizes() == y.sizes() && std::memcmp(x.data_ptr<float>(), y.data_ptr<float>(), x.numel() * 4) == 0;
}

class NativeTarget : public ::testing::TestWithParam<std::string> {};

TEST_P(NativeTarget, RowsOfAMultiTokenForwardEqualOneTokenForwards) {
  LlamaModel m = Quantized(Random(Small(), 3), GetParam());
  auto a = NativeLlama::Create(m, 96).value();
  auto b = NativeLlama::Create(m, 96).value();
  ASSERT_TRUE(a->rows_exact());
  const auto prompt = Tokens(20, 131, 1);
  DecodeOptions pre;
  pre.prefill = true;
  a->forward(prompt, pre);
  b->forward(prompt, pre);
  for (int64_t t : {2, 3, 5, 8, 9, 16, 17}) {
    SCOPED_TRACE(t);
    const auto ids = Tokens(t, 131, 100 + t);
    DecodeOptions all;
    all.logits_last = 0;
    const at::Tensor rows = a->forward(ids, all).clone();
    for (int64_t i = 0; i < t; ++i)
      EXPECT_TRUE(BitEqual(rows[i], b->forward({ids[i]}).clone()[0])) << "row " << i;
    a->truncate(20);
    b->truncate(20);
  }
}

TEST_P(NativeTarget, TreeForwardCompactedToAPathContinuesExactly) {
  LlamaModel m = Quantized(Random(Small(), 4), GetParam());
  auto tree_model = NativeLlama::Create(m, 96).value();
  auto chain_model = NativeLlama::Create(m, 96).value();
  const auto prompt = Tokens(12, 131, 2);
  DecodeOptions pre;
  pre.prefill = true;
  tree_model->forward(prompt, pre);
  chain_model->forward(prompt, pre);
  // Root 5 with two branches: 5 -> 7 -> 9 and 5 -> 11 -> 13 -> 17.
  TokenTree tree(5, 16);
  Draft a;
  a.tokens = {7, 9};
  Draft b;
  b.tokens = {11, 13, 17};
  tree.AddDraft(a, 0, 4);
  const std::vector<int32_t> nodes_b = tree.AddDraft(b, 1, 4);
  const std::vector<int64_t> positions = tree.Positions(tree_model->length());
  DecodeOptions fo;
  fo.logits_last = 0;
  fo.attn_mask = tree.Mask();
  fo.positions = positions;
  const at::Tensor tree_logits = tree_model->forward(tree.Tokens(), fo).clone();
  DecodeOptions all;
  all.logits_last = 0;
  const at::Tensor chain_logits = chain_model->forward({5, 11, 13, 17}, all).clone();
  // The branch's rows in the tree forward are the chain's rows, bit for bit.
  std::vector<int64_t> keep = {12};
  for (int32_t n : nodes_b) keep.push_back(12 + n);
  for (size_t i = 0; i < keep.size(); ++i)
    EXPECT_TRUE(BitEqual(tree_logits[keep[i] - 12], chain_logits[static_cast<int64_t>(i)])) << "path node " << i;
  tree_model->compact(12, keep);
  EXPECT_EQ(tree_model->length(), 16);
  EXPECT_TRUE(BitEqual(tree_model->forward({19}).clone(), chain_model->forward({19}).clone()));
}

INSTANTIATE_TEST_SUITE_P(Precisions, NativeTarget, ::testing::Values("", "int8", "int4-g32"),
                         [](const auto& info) { return info.param.empty() ? std::string("fp32") : [&] {
                           std::string s = info.param;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         }(); });

TEST(NativeTarget, HiddenStateTapsMatchTorch) {
  LlamaModel m = Random(Small(3), 5);
  auto native = NativeLlama::Create(m, 64).value();
  TorchDecodeModel ref(m, 64);
  const auto ids = Tokens(7, 131, 3);
  DecodeOptions o;
  o.hidden_layers = {0, 1, 3};
  native->forward(ids, o);
  ref.forward(ids, o);
  for (size_t j = 0; j < 3; ++j) {
    const at::Tensor a = native->hidden(j), b = ref.hidden(j);
    ASSERT_EQ(a.sizes(), b.sizes()) << j;
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-4 * std::max(1.0, b.abs().max().item<double>())) << "tap " << j;
  }
}

TEST(NativeTarget, GreedySpeculativeOutputEqualsTargetOnlyWithoutNearTieRecomputes) {
  LlamaModel target_model = Random(Small(2), 6);
  LlamaModel draft_model = Random(Small(1), 8);
  auto target = NativeLlama::Create(target_model, 160).value();
  ArDrafter ar(NativeLlama::Create(draft_model, 160).value(), "ar");
  PromptLookupDrafter pl;
  NullDrafter none;
  for (uint64_t seed : {1, 2, 3}) {
    auto prompt = Tokens(16, 131, seed);
    prompt.insert(prompt.end(), prompt.begin(), prompt.begin() + 8);  // a repeat for prompt lookup
    SpecOptions o;
    o.max_new = 40;
    o.sampling.temperature = 0;  // greedy
    o.eos_id = -1;
    o.gamma = 0;
    auto base = SpeculativeGenerate(*target, none, prompt, o);
    ASSERT_TRUE(base.ok()) << base.status();
    for (int64_t gamma : {1, 4, 7}) {
      o.gamma = gamma;
      auto spec = SpeculativeGenerate(*target, ar, prompt, o);
      ASSERT_TRUE(spec.ok()) << spec.status();
      EXPECT_EQ(spec->tokens, base->tokens) << "seed " << seed << " gamma " << gamma;
      EXPECT_EQ(spec->stats.near_ties, 0);
      auto tree = SpeculativeGenerateTree(*target, {&ar, &pl}, prompt, o);
      ASSERT_TRUE(tree.ok()) << tree.status();
      EXPECT_EQ(tree->tokens, base->tokens) << "tree, seed " << seed << " gamma " << gamma;
    }
  }
}

TEST(NativeTarget, RefusesAPromptLongerThanItsCache) {
  auto target = NativeLlama::Create(Random(Small(1), 9), 32).value();
  NullDrafter none;
  SpecOptions o;
  o.max_new = 20;
  auto r = SpeculativeGenerate(*target, none, Tokens(20, 131, 1), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("cache holds 32"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace augur
