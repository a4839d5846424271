// The decoder and its KV cache: every cached path must equal a plain full forward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model.h"
#include "tests/tiny_model.h"

namespace augur {
namespace {

ModelConfig TinyConfig(const std::string& arch = "LlamaForCausalLM") {
  ModelConfig c;
  c.architecture = arch;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = false;
  c.attention_bias = arch == "Qwen2ForCausalLM";
  return c;
}

// Weights 2.5x the 0.02 init (logits of order 1) so that differences are not hidden by tiny logits.
LlamaModel MakeModel(const ModelConfig& c, uint64_t seed = 7) { return tiny::Random(c, seed, 2.5); }
using tiny::Ids;

constexpr double kTol = 1e-5;

TEST(Model, ParameterNamesMatchTransformers) {
  LlamaModel m(TinyConfig("Qwen2ForCausalLM"));
  auto named = m->named_parameters();
  EXPECT_TRUE(named.contains("model.embed_tokens.weight"));
  EXPECT_TRUE(named.contains("model.layers.1.self_attn.q_proj.bias"));
  EXPECT_TRUE(named.contains("model.layers.0.mlp.down_proj.weight"));
  EXPECT_TRUE(named.contains("model.layers.0.post_attention_layernorm.weight"));
  EXPECT_TRUE(named.contains("model.norm.weight"));
  EXPECT_TRUE(named.contains("lm_head.weight"));
  EXPECT_FALSE(named.contains("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_EQ(named["model.layers.0.self_attn.k_proj.weight"].sizes(), (std::vector<int64_t>{16, 32}));
  ModelConfig tied = TinyConfig();
  tied.tie_word_embeddings = true;
  EXPECT_FALSE(LlamaModel(tied)->named_parameters().contains("lm_head.weight"));
  EXPECT_EQ(LlamaModel(tied)->parameters().size() + 1, LlamaModel(TinyConfig())->parameters().size());
}

TEST(Model, IncrementalDecodingEqualsFullForward) {
  for (const char* arch : {"LlamaForCausalLM", "Qwen2ForCausalLM"}) {
    torch::NoGradGuard g;
    auto m = MakeModel(TinyConfig(arch));
    const at::Tensor ids = Ids(2, 12, 97, 1);
    const at::Tensor full = m->forward(ids).logits;
    KVCache cache = m->new_cache(2, 64);
    // Prefill 5, then 1, then 4 at once, then 1, then 1.
    std::vector<at::Tensor> parts;
    int64_t at_pos = 0;
    for (int64_t n : {5, 1, 4, 1, 1}) {
      parts.push_back(m->forward(ids.narrow(1, at_pos, n), &cache).logits);
      at_pos += n;
    }
    EXPECT_EQ(cache.length(), 12);
    const at::Tensor inc = at::cat(parts, 1);
    EXPECT_LT((inc - full).abs().max().item<double>(), kTol) << arch;
    EXPECT_GT(full.abs().max().item<double>(), 0.1);  // not a trivially small output
  }
}

TEST(Model, TruncateThenAppendEqualsFresh) {
  torch::NoGradGuard g;
  auto m = MakeModel(TinyConfig());
  const at::Tensor a = Ids(1, 10, 97, 2), wrong = Ids(1, 4, 97, 3), right = Ids(1, 4, 97, 4);
  KVCache cache = m->new_cache(1, 64);
  m->forward(a, &cache);
  m->forward(wrong, &cache);  // rejected draft
  cache.truncate(10);
  const at::Tensor after = m->forward(right, &cache).logits;
  const at::Tensor fresh = m->forward(at::cat({a, right}, 1)).logits.narrow(1, 10, 4);
  EXPECT_LT((after - fresh).abs().max().item<double>(), kTol);
  // Rejected tokens differ, so had they leaked into the cache the result would differ.
  KVCache leaky = m->new_cache(1, 64);
  m->forward(at::cat({a, wrong}, 1), &leaky);
  const at::Tensor with_leak = m->forward(right, &leaky).logits;
  EXPECT_GT((with_leak - fresh).abs().max().item<double>(), 1e-3);
}

TEST(Model, CausalCustomMaskEqualsDefault) {
  torch::NoGradGuard g;
  auto m = MakeModel(TinyConfig());
  const at::Tensor ids = Ids(2, 9, 97, 5);
  KVCache c1 = m->new_cache(2, 32), c2 = m->new_cache(2, 32);
  m->forward(ids.narrow(1, 0, 4), &c1);
  m->forward(ids.narrow(1, 0, 4), &c2);
  ForwardOptions opts;
  opts.attn_mask = at::ones({5, 5}, torch::kBool).tril();
  const at::Tensor masked = m->forward(ids.narrow(1, 4, 5), &c1, opts).logits;
  const at::Tensor plain = m->forward(ids.narrow(1, 4, 5), &c2).logits;
  EXPECT_LT((masked - plain).abs().max().item<double>(), kTol);
  // A mask with one edge removed changes the rows that lost it, and only those.
  KVCache c3 = m->new_cache(2, 32);
  m->forward(ids.narrow(1, 0, 4), &c3);
  opts.attn_mask = at::ones({5, 5}, torch::kBool).tril();
  opts.attn_mask.index_put_({3, 1}, false);
  const at::Tensor cut = m->forward(ids.narrow(1, 4, 5), &c3, opts).logits;
  EXPECT_LT((cut.narrow(1, 0, 3) - plain.narrow(1, 0, 3)).abs().max().item<double>(), kTol);
  EXPECT_GT((cut.select(1, 3) - plain.select(1, 3)).abs().max().item<double>(), 1e-4);
}

TEST(Model, TreeMaskAndCompactEqualChain) {
  // Two branches after a shared prefix, verified in one pass with a tree mask and explicit
  // positions, must give each branch the logits of a chain; compacting to one branch must
  // leave the cache as if only that branch had been appended.
  torch::NoGradGuard g;
  auto m = MakeModel(TinyConfig());
  const at::Tensor prefix = Ids(1, 6, 97, 6);
  const at::Tensor br_a = Ids(1, 3, 97, 7), br_b = Ids(1, 2, 97, 8);
  KVCache cache = m->new_cache(1, 64);
  m->forward(prefix, &cache);
  ForwardOptions opts;
  opts.positions = at::tensor({6, 7, 8, 6, 7}, torch::kInt64);
  auto mask = at::zeros({5, 5}, torch::kBool);
  mask.narrow(0, 0, 3).narrow(1, 0, 3).copy_(at::ones({3, 3}, torch::kBool).tril());
  mask.narrow(0, 3, 2).narrow(1, 3, 2).copy_(at::ones({2, 2}, torch::kBool).tril());
  opts.attn_mask = mask;
  const at::Tensor tree = m->forward(at::cat({br_a, br_b}, 1), &cache, opts).logits;
  const at::Tensor chain_a = m->forward(at::cat({prefix, br_a}, 1)).logits.narrow(1, 6, 3);
  const at::Tensor chain_b = m->forward(at::cat({prefix, br_b}, 1)).logits.narrow(1, 6, 2);
  EXPECT_LT((tree.narrow(1, 0, 3) - chain_a).abs().max().item<double>(), kTol);
  EXPECT_LT((tree.narrow(1, 3, 2) - chain_b).abs().max().item<double>(), kTol);
  cache.compact(6, at::tensor({9, 10}, torch::kInt64));  // keep branch b
  EXPECT_EQ(cache.length(), 8);
  const at::Tensor next = Ids(1, 1, 97, 9);
  const at::Tensor after = m->forward(next, &cache).logits;
  const at::Tensor want = m->forward(at::cat({prefix, br_b, next}, 1)).logits.narrow(1, 8, 1);
  EXPECT_LT((after - want).abs().max().item<double>(), kTol);
}

TEST(Model, HiddenStatesAndLogitsLast) {
  torch::NoGradGuard g;
  auto m = MakeModel(TinyConfig());
  const at::Tensor ids = Ids(1, 5, 97, 10);
  ForwardOptions opts;
  opts.hidden_layers = {0, 1, 2};
  opts.logits_last = 2;
  ForwardOutput out = m->forward(ids, nullptr, opts);
  ASSERT_EQ(out.hidden.size(), 3u);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 2, 97}));
  // Layer 0 is the embedding lookup; the last is after the final norm, so the logits are
  // that state times the output matrix.
  EXPECT_TRUE(at::allclose(out.hidden[0], m->model->embed_tokens->weight.index_select(0, ids[0]).unsqueeze(0)));
  const at::Tensor from_hidden = at::linear(out.hidden[2], m->lm_head->weight).narrow(1, 3, 2);
  EXPECT_LT((from_hidden - out.logits).abs().max().item<double>(), kTol);
  const at::Tensor full = m->forward(ids).logits.narrow(1, 3, 2);
  EXPECT_LT((full - out.logits).abs().max().item<double>(), kTol);
}

TEST(Model, SlidingWindowCachedEqualsFull) {
  torch::NoGradGuard g;
  ModelConfig c = TinyConfig("MistralForCausalLM");
  c.sliding_window = 4;
  auto m = MakeModel(c);
  const at::Tensor ids = Ids(1, 10, 97, 11);
  const at::Tensor full = m->forward(ids).logits;
  KVCache cache = m->new_cache(1, 32);
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < 10; ++i) parts.push_back(m->forward(ids.narrow(1, i, 1), &cache).logits);
  EXPECT_LT((at::cat(parts, 1) - full).abs().max().item<double>(), kTol);
  // The window matters: without it the last logits differ.
  c.sliding_window = 0;
  LlamaModel nowin(c);
  auto src = m->named_parameters();
  for (auto& p : nowin->named_parameters()) p.value().copy_(src[p.key()]);
  EXPECT_GT((nowin->forward(ids).logits.select(1, 9) - full.select(1, 9)).abs().max().item<double>(), 1e-4);
}

TEST(Model, CacheOverflowIsAnError) {
  torch::NoGradGuard g;
  auto m = MakeModel(TinyConfig());
  KVCache cache = m->new_cache(1, 4);
  m->forward(Ids(1, 3, 97, 12), &cache);
  EXPECT_THROW(m->forward(Ids(1, 2, 97, 13), &cache), c10::Error);
  EXPECT_THROW(cache.truncate(5), c10::Error);
}

}  // namespace
}  // namespace augur
