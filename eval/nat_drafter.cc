#include "eval/nat_drafter.h"

#include <torch/torch.h>

#include <cstdio>

#include "eval/draft_vocab.h"
#include "eval/nat_layout.h"

namespace augur {

NatDrafter::NatDrafter(LlamaModel model, int64_t trained_gamma, int64_t mask_id, int64_t capacity, std::string name)
    : NatDrafter(std::make_unique<TorchDecodeModel>(std::move(model), CacheCapacity(capacity, trained_gamma)),
                 trained_gamma, mask_id, std::move(name)) {}

NatDrafter::NatDrafter(std::unique_ptr<DecodeModel> decoder, int64_t trained_gamma, int64_t mask_id,
                       std::string name)
    : decoder_(std::move(decoder)), trained_gamma_(trained_gamma), mask_id_(mask_id), name_(std::move(name)) {
  AUGUR_CHECK(trained_gamma_ >= 1, "nat drafter: trained gamma ", trained_gamma_);
  AUGUR_CHECK(decoder_ != nullptr, "nat drafter: no decoder");
}

std::string NatDrafter::name() const {
  if (clipped_from_ == 0) return name_;
  return absl::StrCat(name_, " (gamma ", clipped_from_, " clipped to the trained ", trained_gamma_, ")");
}

absl::Status NatDrafter::Begin(const std::vector<int64_t>& prompt) {
  if (prompt.empty()) return absl::InvalidArgumentError("nat drafter: empty prompt");
  decoder_->reset();
  cached_.clear();
  return absl::OkStatus();
}

Draft NatDrafter::Propose(const DraftRequest& req) {
  const std::vector<int64_t>& context = req.context;
  const SamplingParams& params = req.params;
  Sampler& sampler = req.sampler;
  int64_t gamma = req.gamma;
  torch::NoGradGuard no_grad;
  Draft draft;
  if (gamma <= 0 || context.empty()) return draft;
  if (gamma > trained_gamma_) {
    if (gamma > clipped_from_) {
      if (clipped_from_ == 0)
        std::fprintf(stderr, "nat drafter: gamma %lld clipped to the trained gamma %lld\n", (long long)gamma,
                     (long long)trained_gamma_);
      clipped_from_ = gamma;
    }
    gamma = trained_gamma_;
  }
  // Keep the cached prefix the context still agrees with (rejected tokens go); the last
  // context token is always fed again, since its slot predicts offset 1.
  size_t common = 0;
  while (common < cached_.size() && common < context.size() && cached_[common] == context[common]) ++common;
  common = std::min(common, context.size() - 1);
  decoder_->truncate(static_cast<int64_t>(common));
  cached_.resize(common);
  const std::vector<int64_t> real(context.begin() + common, context.end());
  const int64_t n_real = static_cast<int64_t>(real.size());
  gamma = std::min(gamma, decoder_->capacity() - decoder_->length() - n_real + 1);
  if (gamma <= 0) return draft;

  const NatInput in = NatDraftInput(real, decoder_->length(), gamma, mask_id_);
  DecodeOptions fo;
  fo.positions = in.positions;
  fo.attn_mask = in.attn_mask;
  fo.logits_last = gamma;  // slots NatDraftSlot(n_real, 1..gamma) are the last gamma
  fo.prefill = true;       // a draft: its rows need not be exact
  // [G,V]; copied, since the truncate below may invalidate an engine's logits buffer.
  const at::Tensor logits = decoder_->forward(in.ids, fo).clone();
  // The real tokens' keys/values are exact (causal over real tokens); the mask slots' are
  // dropped so the next forward never attends to them.
  decoder_->truncate(decoder_->length() - (gamma - 1));
  cached_.insert(cached_.end(), real.begin(), real.end());

  // Greedy: q is the plain softmax (verification ignores it; tree top-k branches use it, as
  // they do an AR drafter's).
  at::Tensor q = params.greedy() ? logits.softmax(-1) : SamplingProbs(logits, params);  // [G,V or N]
  if (params.greedy()) {
    const at::Tensor tok = GreedyTokens(logits);
    for (int64_t k = 0; k < gamma; ++k) draft.tokens.push_back(tok[k].item<int64_t>());
  } else {
    // Each slot's token is drawn from its own distribution: q_k does not depend on the
    // tokens drafted at earlier slots, which the accept rule allows (q is what was drawn from).
    for (int64_t k = 0; k < gamma; ++k) draft.tokens.push_back(sampler.SampleFromProbs(q[k]));
  }
  if (ids_.defined()) {  // subset indices -> target ids; q zero outside the subset
    const int64_t* map = ids_.data_ptr<int64_t>();
    for (int64_t& t : draft.tokens) t = map[t];
    q = ExpandToVocab(q, ids_, decoder_->config().vocab_size);
  }
  draft.probs = q;
  return draft;
}

absl::Status NatDrafter::SetDraftVocab(const std::vector<int64_t>& ids) {
  AUGUR_RETURN_IF_ERROR(decoder_->RestrictHead(ids));
  ids_ = torch::tensor(ids, torch::kInt64);
  return absl::OkStatus();
}

absl::Status CheckNatMeta(const AugurMeta& meta, const ModelConfig& cfg, const std::string& source) {
  if (meta.kind != kKindNatDrafter)
    return absl::InvalidArgumentError(absl::StrCat("nat drafter: ", source, ": augur.json kind is '", meta.kind,
                                                   "', not 'nat-drafter' (train one with augur distill nat)"));
  if (meta.gamma < 1)
    return absl::InvalidArgumentError(
        absl::StrCat("nat drafter: ", source, ": augur.json gamma ", meta.gamma, " must be >= 1"));
  if (meta.mask_token_id < 0 || meta.mask_token_id >= cfg.vocab_size)
    return absl::InvalidArgumentError(absl::StrCat("nat drafter: ", source, ": augur.json mask_token_id ",
                                                   meta.mask_token_id, " is outside the vocabulary [0, ",
                                                   cfg.vocab_size, ")"));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NatDrafter>> LoadNatDrafter(const std::string& dir, int64_t capacity,
                                                           torch::Device device) {
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ck, LoadCheckpoint(dir, device));
  AUGUR_RETURN_IF_ERROR(CheckNatMeta(ck.meta, ck.model->config(), dir));
  return std::make_unique<NatDrafter>(ck.model, ck.meta.gamma, ck.meta.mask_token_id, capacity);
}

}  // namespace augur
