// The EAGLE-3 feature drafter as LibTorch modules (training, and drafting on any device):
// one decoder layer over the target's own hidden states, with a head over a reduced draft
// vocabulary. Parameter names are the EAGLE-3 checkpoint's (fc.weight, midlayer.*,
// norm.weight, lm_head.weight; docs/FORMATS.md), so augur's checkpoint is the layout
// vLLM, SGLang and llama.cpp load.
//
// At position P the drafter reads the pair (token[P+1], g[P]):
//   g    = fc(concat(h_low, h_mid, h_high))   the target's hidden states at P, fused (3dt -> d)
//        | the drafter's own pre-norm output at P, while it drafts beyond the verified tokens
//   x    = concat(input_layernorm(embed(token)), hidden_norm(g))      [2d]
//   r    = g + o_proj(attention(q/k/v_proj(x), rotary at P))          (the residual is raw g)
//   out  = r + mlp(post_attention_layernorm(r))                       the pre-norm output
//   logits over the draft vocabulary = lm_head(norm(out)); draft id i is target id d2t(i).
// embed is the target's embedding table, shared (not a parameter, never saved).
//
// Shapes: B batch, T positions, S cached positions, H heads, Hkv key/value heads, D head dim,
// d width, dt target width, Nd draft vocabulary, V target vocabulary, K unrolled steps.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/checkpoint.h"
#include "core/eagle_config.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "core/status.h"

namespace augur {

struct EagleAttentionImpl : torch::nn::Module {
  explicit EagleAttentionImpl(const EagleConfig& cfg);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t n_heads, n_kv_heads, head_dim;
};
TORCH_MODULE(EagleAttention);

struct EagleLayerImpl : torch::nn::Module {
  explicit EagleLayerImpl(const EagleConfig& cfg);
  RMSNorm input_layernorm{nullptr}, hidden_norm{nullptr}, post_attention_layernorm{nullptr};
  EagleAttention self_attn{nullptr};
  MLP mlp{nullptr};
};
TORCH_MODULE(EagleLayer);

class EagleHeadImpl : public torch::nn::Module {
 public:
  explicit EagleHeadImpl(const EagleConfig& cfg);

  const EagleConfig& config() const { return cfg_; }
  torch::Device device() const { return fc->weight.device(); }
  // Deterministic init from `seed`: normal(0, 0.02) for matrices, norms at 1.
  void init_weights(uint64_t seed);

  // The target's embedding table [V, d] (shared; moved to this module's device when needed).
  void set_embedding(const at::Tensor& weight);
  const at::Tensor& embedding() const { return embed_; }
  // Draft id -> target id, int64 [Nd] (ascending target ids; identity when Nd == V).
  void set_draft_ids(const at::Tensor& ids);
  const at::Tensor& draft_ids() const { return draft_ids_; }

  // g of verified positions: fc(features), features [..., 3dt] (the three taps concatenated).
  at::Tensor Fuse(const at::Tensor& features);
  // Rotary cos/sin [B|1, T, D] for int64 positions [B|1, T].
  std::pair<at::Tensor, at::Tensor> Rotary(const at::Tensor& positions) const;
  // The decoder layer over T new pairs (tokens int64 [B,T], g [B,T,d]) at `positions`
  // [B|1,T], appended to `cache` (a 1-layer KVCache of LayerConfig(); may hold S entries).
  // mask bool [B|1,T,S+T]: who sees whom (undefined: the prefix and causal among the new).
  // Returns the pre-norm output [B,T,d].
  at::Tensor Step(const at::Tensor& tokens, const at::Tensor& g, const at::Tensor& positions, KVCache* cache,
                  const at::Tensor& mask = {});
  // float32 logits over the draft vocabulary [..., Nd] of pre-norm outputs.
  at::Tensor Logits(const at::Tensor& out);

  // Training-time test (EAGLE-3): `steps` unrolled draft steps over every anchor of a batch.
  // tokens int64 [B,L], features [B,L,3dt] (the target's taps at every position). Step 0 at
  // anchor t reads (tokens[t+1], fc(features[t])); step k reads (tokens[t+1+k], step k-1's
  // output at t), at position t+k, and attends to step 0's entries at positions <= t and to
  // its own earlier steps at t: exactly what drafting k tokens beyond anchor t sees. Returns
  // per step the logits [B,L,Nd] that predict the target's distribution at position t+1+k
  // (valid for t + k <= L - 2; tokens past the end are read as token 0 and must be masked).
  std::vector<at::Tensor> Unroll(const at::Tensor& tokens, const at::Tensor& features, int64_t steps);

  torch::nn::Linear fc{nullptr};
  EagleLayer midlayer{nullptr};
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};

 private:
  at::Tensor Embed(const at::Tensor& tokens);
  EagleConfig cfg_;
  at::Tensor inv_freq_;   // [D/2] float32
  at::Tensor embed_;      // [V, d], shared with the target
  at::Tensor draft_ids_;  // int64 [Nd]
};
TORCH_MODULE(EagleHead);

// A KV cache for the drafter's one layer.
KVCache NewEagleCache(const EagleHeadImpl& head, int64_t capacity);

// ---- checkpoints -------------------------------------------------------------------------
// An eagle-drafter directory: config.json (EagleConfig::ToJson, the serving layout),
// model.safetensors (the parameters plus d2t int64 [Nd] offsets, target id = i + d2t[i], and
// t2d bool [V]), augur.json (kind eagle-drafter).

// The tensors as saved (float32, or `dtype`), d2t and t2d included.
NamedTensors EagleTensors(EagleHeadImpl& head, torch::Dtype dtype = torch::kFloat32);
absl::Status SaveEagleHead(EagleHeadImpl& head, const AugurMeta& meta, const std::string& dir,
                           torch::Dtype dtype = torch::kFloat32);

struct LoadedEagle {
  EagleHead head{nullptr};
  AugurMeta meta;
  std::string dir;
};
// Loads and validates (shapes against config.json, d2t/t2d against each other, kind). The
// embedding is not in the checkpoint: set_embedding with the target's before use.
absl::StatusOr<LoadedEagle> LoadEagleHead(const std::string& dir, torch::Device device = torch::kCPU);

}  // namespace augur
