// What the EAGLE-3 drafter (eval/eagle_drafter.h) drives: the drafter's one layer with its own
// KV cache, batch 1. Two engines implement it: TorchEagleDecoder (core/eagle_head.h's module,
// any device) and NativeEagle (runtime/native_eagle.h: fp32 / int8 / int4 CPU kernels).
//
// Shapes: N new pairs, d width, dt target width, Nd draft vocabulary.
#pragma once

#include <ATen/core/Tensor.h>
#include <absl/types/span.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/eagle_head.h"
#include "core/status.h"

namespace augur {

class EagleDecoder {
 public:
  virtual ~EagleDecoder() = default;
  virtual std::string engine() const = 0;     // "torch" | "native"
  virtual std::string precision() const = 0;  // "fp32", "int4-g32", ...
  virtual const EagleConfig& config() const = 0;
  // Draft id -> target id, int64 CPU [Nd].
  virtual const at::Tensor& draft_ids() const = 0;
  virtual int64_t length() const = 0;
  virtual int64_t capacity() const = 0;
  virtual void truncate(int64_t n) = 0;
  virtual void reset() = 0;
  // Appends N pairs (tokens[i], g row i) at `positions` (empty: length(), length()+1, ...).
  // g is float32 CPU: the target's taps concatenated [N, 3dt] when `fuse` (fc applies), else
  // the drafter's own outputs [N, d]. mask bool CPU [N,N]: who among the new pairs sees whom
  // (undefined: causal), the cached prefix always visible; or [N, length()+N]: also which
  // cached entries each new pair sees (a draft tree's branches). Returns the pre-norm outputs
  // float32 CPU [N, d] (valid until the next call) and, in *logits, float32 [N, Nd] when
  // `logits` is not null.
  virtual at::Tensor Step(absl::Span<const int64_t> tokens, const at::Tensor& g, bool fuse,
                          absl::Span<const int64_t> positions, const at::Tensor& mask, at::Tensor* logits) = 0;
};

// The LibTorch module on a 1-layer KVCache of `capacity`.
class TorchEagleDecoder : public EagleDecoder {
 public:
  TorchEagleDecoder(EagleHead head, int64_t capacity);
  std::string engine() const override { return "torch"; }
  std::string precision() const override { return "fp32"; }
  const EagleConfig& config() const override { return head_->config(); }
  const at::Tensor& draft_ids() const override { return ids_; }
  int64_t length() const override { return cache_.length(); }
  int64_t capacity() const override { return cache_.capacity(); }
  void truncate(int64_t n) override { cache_.truncate(n); }
  void reset() override { cache_.reset(); }
  at::Tensor Step(absl::Span<const int64_t> tokens, const at::Tensor& g, bool fuse,
                  absl::Span<const int64_t> positions, const at::Tensor& mask, at::Tensor* logits) override;
  EagleHead& head() { return head_; }

 private:
  EagleHead head_;
  KVCache cache_;
  at::Tensor ids_;
};

}  // namespace augur
