// The native CPU decode runtime: a Llama-family decoder (Llama, Qwen2, Mistral) run as plain
// loops over preallocated fp32 buffers, with no LibTorch operator per step. A drafter's step
// through LibTorch costs ~0.5 ms on a 2-layer, hidden-128 model whose linears are only ~0.5M
// multiply-adds: per-operator overhead, which quantization cannot remove. NativeLlama does the
// same arithmetic as core/model.cc's LlamaModel::forward with a KV cache (the reference it is
// tested against, tests/native_llama_test.cc), in microseconds.
//
// Linears: fp32 weights copied from the model at construction, run by runtime/kernels/kernels_f32.h;
// a linear with a QuantLinearBackend installed (runtime/qmodel.h) runs its packed int8/int4
// weight through the same Int8GemmCpu/Int4GemmCpu kernels the torch model calls. A forward of
// many tokens marked as a prefill (DecodeOptions::prefill) takes the route QuantizedLinear
// takes from DequantGemmMinRows() rows: ATen's GEMM on the (dequantized) weight; decode steps,
// verification and NAT drafts stay on the plain kernels, torch-free.
// The kernels split output rows over threads (their own pool, kernels_cpu.h ParallelFor) when a
// call has enough work (the target case) and compute each row exactly as a one-row call would
// (rows_exact()).
//
// Shapes: M new tokens, C hidden, H query heads, Hkv key/value heads, D head dim, I MLP width,
// V vocab, K logits rows.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/decode_model.h"
#include "runtime/llama_weights.h"
#include "runtime/kernels/kernels_cpu.h"
#include "runtime/qweight.h"

namespace augur {

class NativeLlama : public DecodeModel {
 public:
  // Copies `model`'s weights (fp32, or the packed weights of its quantized linears) into a
  // runtime with a KV cache of `capacity` tokens. Refuses, with one line naming the reason,
  // what it cannot run exactly: a model not on the CPU, a linear backend other than
  // QuantLinearBackend (e.g. QAT fake-quant). Callers then fall back to TorchDecodeModel.
  static absl::StatusOr<std::unique_ptr<NativeLlama>> Create(LlamaModel model, int64_t capacity);
  // From plain weights (runtime/llama_weights.h ReadLlamaWeights: a checkpoint read without a
  // LibTorch module); the vectors are moved in, not copied.
  static absl::StatusOr<std::unique_ptr<NativeLlama>> Create(LlamaWeights weights, int64_t capacity);

  std::string engine() const override { return "native"; }
  const ModelConfig& config() const override { return cfg_; }
  int64_t length() const override { return length_; }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t n) override;
  void reset() override { length_ = 0; }
  at::Tensor forward(absl::Span<const int64_t> ids, const DecodeOptions& opts = {}) override;
  at::Tensor hidden(size_t j) const override;
  void compact(int64_t base, absl::Span<const int64_t> keep) override;
  // Rows are exact except in a prefill forward (opts.prefill), which may take ATen's GEMM.
  bool rows_exact() const override { return true; }
  // Not needed (rows_exact): a cache-free forward over `context` on a scratch cache.
  at::Tensor canonical_logits(absl::Span<const int64_t> context) override;

  // "fp32", "int8", "int4-g32", or a list when linears differ ("int4-g32 + fp32 head").
  std::string precision() const override;
  // Keeps only rows `ids` of the head (fp32 rows, or the packed rows and their scales).
  absl::Status RestrictHead(const std::vector<int64_t>& ids) override;
  // Bytes of the linears' weights as run (fp32 or packed), for benchmarks.
  int64_t linear_bytes() const;

 private:
  // One projection y = x·Wᵀ + b, fp32 or packed.
  struct Linear {
    int64_t out = 0, in = 0;
    std::vector<float> weight;  // fp32 [out, in]; empty when packed
    std::vector<float> bias;    // [out], empty when none
    QuantizedWeight packed;     // bits 8/4 when quantized (keeps the packed tensors alive)
    qkernels::Int8Weights w8{};
    qkernels::Int4Weights w4{};
    int bits = 0;  // 0 = fp32
    // y [M, out] = x [M, in]·Wᵀ + b: the fp32 or packed kernels, ApplyGemm from
    // DequantGemmMinRows() rows.
    void Apply(const float* x, int64_t m, float* y, bool gemm_ok) const;
    void ApplyGemm(const float* x, int64_t m, float* y) const;
    std::string precision() const;
  };
  struct Layer {
    std::vector<float> input_norm, post_norm;  // [C]
    Linear q, k, v, o, gate, up, down;
    std::vector<float> k_cache, v_cache;  // [Hkv, capacity, D], keys after RoPE
  };

  NativeLlama(const ModelConfig& cfg, int64_t capacity);
  static absl::StatusOr<Linear> MakeLinear(const std::string& name, LinearWeights&& src);
  void EnsureScratch(int64_t m);
  void RmsNorm(const float* x, const std::vector<float>& w, int64_t m, float* y) const;
  void Rope(float* x, int64_t m, int64_t heads) const;  // in place, rows of heads*D, tables in cos_/sin_
  void Attention(const Layer& layer, int64_t m, const bool* local_mask);

  ModelConfig cfg_;
  int64_t capacity_, length_ = 0;
  int64_t hidden_, heads_, kv_heads_, head_dim_, inter_, vocab_;
  std::vector<float> embed_;     // [V, C]
  std::vector<float> inv_freq_;  // [D/2], as core/model.cc computes it
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  Linear head_;
  int64_t head_rows_;  // vocab_, or the restricted draft vocabulary's size
  // Scratch for M rows, grown on demand and reused (no allocation in a steady decode loop).
  int64_t scratch_rows_ = 0;
  std::vector<float> x_, xn_, q_, k_, v_, attn_, tmp_, gate_, up_, cos_, sin_;
  std::vector<float> logits_;  // [K, V], grown on demand
  std::vector<float> scores_;  // [capacity]
  std::vector<std::vector<float>> taps_;  // [N, C] per requested hidden layer of the last forward
  int64_t tap_rows_ = 0;
};

}  // namespace augur
