// A NAT (parallel) drafter: proposes up to gamma tokens with ONE forward over
// [uncached context tokens..., last token, mask x (gamma-1)] (eval/nat_layout.h) on its own
// KV cache. The real tokens stay in the cache (rolled back to the longest prefix shared with
// the next context, like ArDrafter); the mask slots are truncated away after every forward,
// so the cache only ever holds real context tokens.
//
// Shapes: G proposed tokens, V vocab.
#pragma once

#include <memory>
#include <string>

#include "core/checkpoint.h"
#include "runtime/decode_model.h"
#include "eval/drafter.h"

namespace augur {

class NatDrafter : public Drafter {
 public:
  // trained_gamma: the gamma the model was trained for (a larger request is clipped to it);
  // capacity: the longest context this drafter will see (prompt + max_new + gamma).
  // Runs the model through LibTorch (TorchDecodeModel).
  NatDrafter(LlamaModel model, int64_t trained_gamma, int64_t mask_id, int64_t capacity,
             std::string name = "nat");
  // Any engine (runtime/native_llama.h on the CPU); its capacity must hold the longest
  // context plus the gamma-1 mask slots: CacheCapacity(capacity, trained_gamma).
  NatDrafter(std::unique_ptr<DecodeModel> decoder, int64_t trained_gamma, int64_t mask_id,
             std::string name = "nat");
  static int64_t CacheCapacity(int64_t capacity, int64_t trained_gamma) { return capacity + trained_gamma; }
  // "nat" plus, once a request was clipped, " (gamma N clipped to the trained K)".
  std::string name() const override;
  absl::Status Begin(const std::vector<int64_t>& prompt) override;
  Draft Propose(const DraftRequest& req) override;

  int64_t trained_gamma() const { return trained_gamma_; }
  int64_t mask_id() const { return mask_id_; }
  int64_t cache_length() const { return decoder_->length(); }  // for tests: real tokens only
  const DecodeModel& decoder() const { return *decoder_; }
  // A reduced draft vocabulary, as ArDrafter::SetDraftVocab.
  absl::Status SetDraftVocab(const std::vector<int64_t>& ids);

 private:
  at::Tensor ids_;  // int64 [N] when the draft vocabulary is reduced
  std::unique_ptr<DecodeModel> decoder_;
  int64_t trained_gamma_, mask_id_;
  std::vector<int64_t> cached_;  // the real tokens whose keys/values are in the decoder's cache
  std::string name_;
  int64_t clipped_from_ = 0;     // largest gamma requested beyond trained_gamma_ (0 = none)
};

// Checks that `meta` describes a usable NAT drafter for a model of `cfg`: kind nat-drafter,
// gamma >= 1, mask id inside the vocabulary. `source` names the checkpoint in messages.
absl::Status CheckNatMeta(const AugurMeta& meta, const ModelConfig& cfg, const std::string& source);

// Loads a nat-drafter checkpoint directory (kind, gamma and mask id checked; a checkpoint of
// another kind is refused with a message that says what it is).
absl::StatusOr<std::unique_ptr<NatDrafter>> LoadNatDrafter(const std::string& dir, int64_t capacity,
                                                           torch::Device device = torch::kCPU);

}  // namespace augur
