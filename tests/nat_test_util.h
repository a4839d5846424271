// Tiny random Llama models for the NAT tests (vocab 61: ids 0-4 reserved, 4 = <mask>).
#pragma once

#include <torch/torch.h>

#include "core/config.h"
#include "core/model.h"

namespace augur::nattest {

inline ModelConfig Tiny(int64_t layers, int64_t hidden) {
  ModelConfig c;
  c.vocab_size = 61;
  c.hidden_size = hidden;
  c.intermediate_size = hidden * 2;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 256;
  c.eos_token_id = -1;  // never stop early in these tests
  return c;
}

// transformers' init scaled by `scale` (larger = peakier distributions).
inline LlamaModel Random(const ModelConfig& c, uint64_t seed, double scale) {
  LlamaModel m(c);
  m->init_weights(seed);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.mul_(scale);
  m->eval();
  return m;
}

}  // namespace augur::nattest
