// The EAGLE-3 drafter on augur's native CPU kernels: the arithmetic of core/eagle_head.h's
// EagleHeadImpl::Step as plain loops over preallocated fp32 buffers, its linears fp32 or
// quantized (int8 / int4, round-to-nearest at load: runtime/qweight.h) and run by the same
// kernels as the native Llama engine (runtime/kernels/). A draft step is one token through
// one layer and a head of Nd rows, where LibTorch's per-operator overhead would dominate.
//
// Shapes: N new pairs, d width, D head dim, Nd draft vocabulary.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/eagle_decoder.h"
#include "runtime/kernels/kernels_cpu.h"
#include "runtime/qweight.h"

namespace augur {

class NativeEagle : public EagleDecoder {
 public:
  // Copies `head`'s weights (it must be on the CPU with its embedding set); `scheme` ""
  // keeps fp32, else a scheme name (int8, int4-g32, ...) quantizes every linear (fc, the
  // layer's seven, the head) by RTN.
  static absl::StatusOr<std::unique_ptr<NativeEagle>> Create(EagleHeadImpl& head, const std::string& scheme,
                                                             int64_t capacity);

  std::string engine() const override { return "native"; }
  std::string precision() const override { return precision_; }
  const EagleConfig& config() const override { return cfg_; }
  const at::Tensor& draft_ids() const override { return ids_; }
  int64_t length() const override { return length_; }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t n) override;
  void reset() override { length_ = 0; }
  at::Tensor Step(absl::Span<const int64_t> tokens, const at::Tensor& g, bool fuse,
                  absl::Span<const int64_t> positions, const at::Tensor& mask, at::Tensor* logits) override;

 private:
  struct Linear {
    int64_t out = 0, in = 0;
    std::vector<float> weight;  // fp32 [out, in]; empty when packed
    QuantizedWeight packed;
    qkernels::Int8Weights w8{};
    qkernels::Int4Weights w4{};
    int bits = 0;
    void Apply(const float* x, int64_t m, float* y) const;
  };
  NativeEagle(const EagleConfig& cfg, int64_t capacity);
  static Linear MakeLinear(const at::Tensor& weight, const QuantScheme* scheme);
  void RmsNorm(const float* x, const std::vector<float>& w, int64_t m, float* y) const;

  EagleConfig cfg_;
  std::string precision_ = "fp32";
  int64_t capacity_, length_ = 0;
  int64_t d_, heads_, kv_heads_, head_dim_, inter_, nd_;
  at::Tensor ids_;
  std::vector<float> embed_, inv_freq_;
  std::vector<float> input_norm_, hidden_norm_, post_norm_, final_norm_;
  Linear fc_, q_, k_, v_, o_, gate_, up_, down_, head_;
  std::vector<float> k_cache_, v_cache_;  // [Hkv, capacity, D], keys after RoPE
  // Scratch, grown on demand.
  std::vector<float> g_, x_, q_buf_, k_buf_, v_buf_, attn_, r_, hn_, gate_buf_, up_buf_, out_, scores_, logits_;
};

}  // namespace augur
