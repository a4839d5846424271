// Tiny random Llama models for the tests: one config builder, one seeded init, random ids,
// and a parameter comparison of two checkpoints.
// Each test keeps its own sizes; these only remove the copies of the same few lines.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <algorithm>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/model.h"

namespace augur::tiny {

// `layers` x `hidden` with GQA (4 query heads, 2 key/value heads), MLP width `intermediate`
// (0 = 2 x hidden), 256 positions and a tied head; EOS -1 so that generation never stops early. Qwen2
// gets its q/k/v biases.
inline ModelConfig Config(int64_t layers, int64_t hidden, int64_t vocab, int64_t intermediate = 0,
                          const std::string& arch = "LlamaForCausalLM", bool tied = true) {
  ModelConfig c;
  c.architecture = arch;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate > 0 ? intermediate : hidden * 2;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 256;
  c.eos_token_id = -1;
  c.tie_word_embeddings = tied;
  c.attention_bias = arch == "Qwen2ForCausalLM";
  return c;
}

// transformers' init from `seed`, every parameter scaled by `scale` (larger = peakier
// distributions, fewer near-ties in argmax), in eval mode.
inline LlamaModel Random(const ModelConfig& c, uint64_t seed, double scale = 1.0) {
  LlamaModel m(c);
  m->init_weights(seed);
  torch::NoGradGuard g;
  if (scale != 1.0)
    for (auto& p : m->parameters()) p.mul_(scale);
  m->eval();
  return m;
}

// Uniform ids in [0, vocab), [b, t] int64.
inline at::Tensor Ids(int64_t b, int64_t t, int64_t vocab, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randint(vocab, {b, t}, gen, torch::kInt64);
}

// n pseudo-random ids in [0, vocab), a pure function of `seed` (an LCG, no torch generator).
inline std::vector<int64_t> Prompt(int64_t n, uint64_t seed, int64_t vocab = 61) {
  std::vector<int64_t> p;
  uint64_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    p.push_back(static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(vocab)));
  }
  return p;
}

// Largest absolute difference between the parameters of two checkpoint directories (same
// config); fails the calling test when either does not load.
inline double MaxParamDiff(const std::string& a, const std::string& b) {
  auto ca = LoadCheckpoint(a), cb = LoadCheckpoint(b);
  EXPECT_TRUE(ca.ok() && cb.ok()) << a << " / " << b;
  if (!ca.ok() || !cb.ok()) return 1e30;
  double d = 0;
  const auto pb = cb->model->named_parameters();
  for (const auto& p : ca->model->named_parameters())
    d = std::max(d, (p.value() - pb[p.key()]).abs().max().item<double>());
  return d;
}

}  // namespace augur::tiny
