// Llama-family decoder (Llama, Qwen2, Mistral) as LibTorch modules, with a KV cache that
// speculative decoding can append to, roll back and mask.
//
// Shapes, once for this file: B batch, T new tokens, S cached tokens, H query heads,
// Hkv key/value heads, D head dim, C hidden size, V vocab.
//
// Parameter names equal transformers' (model.layers.0.self_attn.q_proj.weight, ...), so a
// checkpoint maps onto named_parameters() one to one.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/config.h"

namespace augur {

// Per-layer key/value cache of fixed capacity. All rows of the batch share one length.
class KVCache {
 public:
  KVCache() = default;
  KVCache(const ModelConfig& cfg, int64_t batch, int64_t capacity, torch::Device device,
          torch::Dtype dtype);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t batch() const { return batch_; }
  bool empty() const { return layers_.empty(); }

  // Roll back to an earlier length: entries past it are forgotten (they are overwritten by
  // the next append, never read).
  void truncate(int64_t new_length);
  // Keep, after the first `prefix` entries, only the entries at absolute indices
  // `keep` (int64 [N], ascending, each >= prefix), moved to prefix..prefix+N-1.
  // Tree verification uses this to keep the accepted path.
  void compact(int64_t prefix, const at::Tensor& keep);
  void reset() { length_ = 0; }

  // Used by the attention layers: writes k/v ([B,Hkv,T,D]) at [length, length+T) of
  // `layer` and returns views of the filled part [B,Hkv,length+T,D]. The length itself
  // advances once per forward through advance().
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  void advance(int64_t t) { length_ += t; }

 private:
  std::vector<std::pair<at::Tensor, at::Tensor>> layers_;  // [B,Hkv,capacity,D] each
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  int64_t batch_ = 0;
};

// Another implementation of one projection (quantized kernels, fake-quant for QAT). core only
// holds the slot; quantize/ fills it, so core does not depend on quantize. When a slot is set
// the projection runs through it instead of its Linear; the Linear's parameters stay (they
// keep the names checkpoints use and, for QAT, are what the backend trains).
struct LinearBackend {
  virtual ~LinearBackend() = default;
  virtual at::Tensor forward(const at::Tensor& x) = 0;  // x [..., in] -> [..., out]
};
using LinearBackendPtr = std::shared_ptr<LinearBackend>;

struct ForwardOptions {
  // int64 [T] or [B,T]; default: cache length + arange(T) (or arange(T) without a cache).
  at::Tensor positions;
  // bool [T,T] or [B,T,T]: true where new token i may attend to new token j. Default: causal.
  at::Tensor attn_mask;
  // bool [B,S] over the S cached positions: which of them the new tokens may see (rows of a
  // left-padded batch hide their padding). Default: the whole cached prefix is visible.
  at::Tensor prefix_mask;
  // Return the hidden state after these layers: 0 = embeddings, i = output of layer i,
  // num_hidden_layers = after the final norm.
  std::vector<int64_t> hidden_layers;
  // Compute logits for the last `logits_last` positions only (0 = all).
  int64_t logits_last = 0;
};

struct ForwardOutput {
  at::Tensor logits;               // [B,T,V] (or [B,logits_last,V]), float32
  std::vector<at::Tensor> hidden;  // one [B,T,C] per requested layer
};

struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const ModelConfig& cfg, int64_t layer_index);
  // x [B,T,C]; cos/sin [B or 1,T,D]; mask: additive-free bool [B or 1,1,T,S+T] or undefined
  // for plain causal over a fresh sequence.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, KVCache* cache);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  LinearBackendPtr q_backend, k_backend, v_backend, o_backend;  // null = the Linear itself
  int64_t n_heads, n_kv_heads, head_dim, layer_index;
};
TORCH_MODULE(Attention);

struct MLPImpl : torch::nn::Module {
  MLPImpl(int64_t hidden, int64_t intermediate);
  at::Tensor forward(const at::Tensor& x);  // down(silu(gate(x)) * up(x))
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  LinearBackendPtr gate_backend, up_backend, down_backend;  // null = the Linear itself
};
TORCH_MODULE(MLP);

struct DecoderLayerImpl : torch::nn::Module {
  DecoderLayerImpl(const ModelConfig& cfg, int64_t layer_index);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, KVCache* cache);
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The "model." part of the HF names.
struct DecoderStackImpl : torch::nn::Module {
  explicit DecoderStackImpl(const ModelConfig& cfg);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(DecoderStack);

class LlamaModelImpl : public torch::nn::Module {
 public:
  explicit LlamaModelImpl(const ModelConfig& cfg);

  // ids int64 [B,T]. With a cache, the new tokens attend to the cached prefix and are
  // appended to it; without, it is a plain causal forward (training).
  ForwardOutput forward(const at::Tensor& ids, KVCache* cache = nullptr,
                        const ForwardOptions& opts = {});
  // Training convenience: logits [B,T,V] of a causal forward without a cache.
  at::Tensor logits(const at::Tensor& ids);

  // A cache on this model's device and dtype.
  KVCache new_cache(int64_t batch, int64_t capacity) const;
  const ModelConfig& config() const { return cfg_; }
  // Deterministic init as in transformers (normal(0, 0.02), norms at 1), from `seed`.
  void init_weights(uint64_t seed);
  torch::Device device() const;
  torch::Dtype dtype() const;

  DecoderStack model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_word_embeddings
  // Computes the logits from the final hidden state instead of the (tied or untied) output
  // weight when set (a quantized head).
  LinearBackendPtr head_backend;

 private:
  at::Tensor output_weight() const;
  ModelConfig cfg_;
  at::Tensor inv_freq_;  // [D/2] float32, not a parameter
};
TORCH_MODULE(LlamaModel);

}  // namespace augur
