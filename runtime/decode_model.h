// An incremental decoder with its own KV cache (batch 1): what a model drafter drives. Two
// engines implement it: TorchDecodeModel (a LlamaModel + KVCache, any device) below, and
// runtime/native_llama.h's NativeLlama (plain fp32 / int8 / int4 CPU loops, no per-operator
// overhead), which the drafters use on the CPU.
//
// Shapes: N new tokens, K logits rows returned, V vocab.
#pragma once

#include <ATen/core/Tensor.h>
#include <absl/types/span.h>

#include <cstdint>
#include <string>

#include "core/model.h"

namespace augur {

struct DecodeOptions {
  // Absolute positions of the new tokens (RoPE); empty: length(), length()+1, ...
  absl::Span<const int64_t> positions;
  // bool [N,N] on the CPU: true where new token i may attend to new token j. The cached prefix
  // is always visible. Undefined: causal.
  at::Tensor attn_mask;
  // Logits of the last K new tokens (0 = all N).
  int64_t logits_last = 1;
};

class DecodeModel {
 public:
  virtual ~DecodeModel() = default;
  virtual std::string engine() const = 0;  // "torch" | "native"
  virtual const ModelConfig& config() const = 0;
  virtual int64_t length() const = 0;    // tokens in the cache
  virtual int64_t capacity() const = 0;  // most tokens the cache holds
  // Roll back to an earlier length (0 <= n <= length()): later entries are forgotten.
  virtual void truncate(int64_t n) = 0;
  virtual void reset() = 0;
  // Appends `ids` (N >= 1, length() + N <= capacity()) to the cache and returns float32 CPU
  // logits [K,V] of the last K of them. The tensor may be a view of the engine's own buffer:
  // it stays valid until the next forward/truncate/reset call (copy it to keep it longer).
  virtual at::Tensor forward(absl::Span<const int64_t> ids, const DecodeOptions& opts = {}) = 0;
};

// The LibTorch engine: LlamaModel::forward on a KVCache of `capacity`, on the model's device.
class TorchDecodeModel : public DecodeModel {
 public:
  TorchDecodeModel(LlamaModel model, int64_t capacity);
  std::string engine() const override { return "torch"; }
  const ModelConfig& config() const override { return model_->config(); }
  int64_t length() const override { return cache_.length(); }
  int64_t capacity() const override { return cache_.capacity(); }
  void truncate(int64_t n) override { cache_.truncate(n); }
  void reset() override { cache_.reset(); }
  at::Tensor forward(absl::Span<const int64_t> ids, const DecodeOptions& opts = {}) override;
  LlamaModel& model() { return model_; }

 private:
  LlamaModel model_;
  KVCache cache_;
};

}  // namespace augur
