// A small autoregressive model as drafter: gamma sequential one-token forwards on its own
// KV cache, rolled back to the longest prefix it shares with the accepted context.
#pragma once

#include <memory>

#include "runtime/decode_model.h"
#include "eval/drafter.h"

namespace augur {

class ArDrafter : public Drafter {
 public:
  // `capacity`: the longest context this drafter will see (prompt + max_new + gamma). Runs
  // the model through LibTorch (TorchDecodeModel).
  ArDrafter(LlamaModel model, int64_t capacity, std::string name = "ar");
  // Any engine (runtime/native_llama.h on the CPU); its capacity is the longest context.
  explicit ArDrafter(std::unique_ptr<DecodeModel> decoder, std::string name = "ar");
  std::string name() const override { return name_; }
  absl::Status Begin(const std::vector<int64_t>& prompt) override;
  Draft Propose(const DraftRequest& req) override;
  const DecodeModel& decoder() const { return *decoder_; }
  // A reduced draft vocabulary (eval/draft_vocab.h): the head scores only `ids`; drafted
  // tokens and q are mapped back to the target's vocabulary.
  absl::Status SetDraftVocab(const std::vector<int64_t>& ids);
  int64_t draft_vocab() const { return ids_.defined() ? ids_.numel() : 0; }  // 0: full

 private:
  std::unique_ptr<DecodeModel> decoder_;
  at::Tensor ids_;  // int64 [N] when reduced
  std::vector<int64_t> id_list_;
  std::vector<int64_t> cached_;  // the tokens whose keys/values are in the decoder's cache
  std::string name_;
};

}  // namespace augur
