// An incremental decoder with its own KV cache (batch 1): what the speculative engine drives as
// the target and what a model drafter drives. Two engines implement it: TorchDecodeModel (a
// LlamaModel + KVCache, any device) below, and runtime/native_llama.h's NativeLlama (plain fp32
// / int8 / int4 CPU loops, multi-threaded, no per-operator overhead).
//
// Shapes: N new tokens, K logits rows returned, V vocab.
#pragma once

#include <ATen/core/Tensor.h>
#include <absl/types/span.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/sampling.h"
#include "core/status.h"

namespace augur {

struct DecodeOptions {
  // Absolute positions of the new tokens (RoPE); empty: length(), length()+1, ...
  absl::Span<const int64_t> positions;
  // bool [N,N] on the CPU: true where new token i may attend to new token j. The cached prefix
  // is always visible. Undefined: causal.
  at::Tensor attn_mask;
  // Logits of the last K new tokens (0 = all N).
  int64_t logits_last = 1;
  // A prompt's prefill: the engine may take a faster route whose rows round differently from
  // a one-token forward (native: ATen's GEMM). Verification forwards leave it false.
  bool prefill = false;
  // Hidden states to keep of all N new tokens (0 = embeddings, i = output of layer i,
  // num_hidden_layers = after the final norm), read back with hidden(j) until the next call.
  std::vector<int64_t> hidden_layers;
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
  // float32 CPU [N, C]: the j-th of the last forward's opts.hidden_layers.
  virtual at::Tensor hidden(size_t j) const = 0;
  // Keeps cache entries [0, base) and then the entries at `keep` (ascending, each >= base) in
  // that order; length() becomes base + keep.size(). A tree verification keeps its accepted path.
  virtual void compact(int64_t base, absl::Span<const int64_t> keep) = 0;
  // True when every row of a forward of N tokens equals, bit for bit, the one-token forward of
  // that token on the same cache (the kernels' arithmetic per row does not depend on N or on
  // the tree mask; runtime/kernels/kernels_cpu.h). Then greedy verification needs no near-tie
  // rule: it sees exactly the logits step-by-step decoding sees.
  virtual bool rows_exact() const { return false; }
  // Logits [V] of the last token of `context` from a cache-free forward over all of it: what a
  // decision depends on when the engine's rows are not exact (the near-tie rule of
  // eval/speculative.h). Leaves the cache as it was.
  virtual at::Tensor canonical_logits(absl::Span<const int64_t> context) = 0;
  // "fp32", "int8", "int4-g32 + fp32 head", ...: the weights as run.
  virtual std::string precision() const = 0;
  // A reduced draft vocabulary (eval/draft_vocab.h): from now on forward() returns logits
  // [K, ids.size()], column i being token ids[i]'s (ids distinct, inside the vocabulary). The
  // native engine then computes only those rows of the head; LibTorch selects the columns.
  virtual absl::Status RestrictHead(const std::vector<int64_t>& ids) = 0;
};

// core/sampling.h's Generate on either engine: prefill, then one-token forwards, each next token
// drawn by Sampler under opts.sampling (greedy: argmax), stopping at EOS, a stop id or max_new.
// The prompt's last token runs alone after the prefill, as in the speculative engine, so greedy
// output on an engine with exact rows equals eval/speculative.h's at gamma 0. The cache is reset
// first and must hold prompt + max_new - 1 tokens (capacity()).
absl::StatusOr<GenerateResult> Generate(DecodeModel& model, const std::vector<int64_t>& prompt,
                                        const GenerateOptions& opts,
                                        const std::function<void(int64_t)>& on_token = nullptr);

// ids distinct and in [0, vocab): the check both engines make.
absl::Status CheckHeadIds(const std::vector<int64_t>& ids, int64_t vocab);

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
  at::Tensor hidden(size_t j) const override;
  void compact(int64_t base, absl::Span<const int64_t> keep) override;
  at::Tensor canonical_logits(absl::Span<const int64_t> context) override;
  std::string precision() const override;
  absl::Status RestrictHead(const std::vector<int64_t>& ids) override;
  LlamaModel& model() { return model_; }

 private:
  LlamaModel model_;
  KVCache cache_;
  std::vector<at::Tensor> hidden_;
  at::Tensor head_ids_;  // int64 [N] when restricted
};

}  // namespace augur
