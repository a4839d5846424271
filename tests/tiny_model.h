// Tiny random Llama models for the tests: one config builder, one seeded init, random ids.
// Each test keeps its own sizes; these only remove the copies of the same few lines.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

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

}  // namespace augur::tiny
