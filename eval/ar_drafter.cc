#include "eval/ar_drafter.h"

#include <torch/torch.h>

#include "eval/draft_vocab.h"

namespace augur {

ArDrafter::ArDrafter(LlamaModel model, int64_t capacity, std::string name)
    : ArDrafter(std::make_unique<TorchDecodeModel>(std::move(model), capacity), std::move(name)) {}

ArDrafter::ArDrafter(std::unique_ptr<DecodeModel> decoder, std::string name)
    : decoder_(std::move(decoder)), name_(std::move(name)) {
  AUGUR_CHECK(decoder_ != nullptr, "ar drafter: no decoder");
}

absl::Status ArDrafter::SetDraftVocab(const std::vector<int64_t>& ids) {
  AUGUR_RETURN_IF_ERROR(decoder_->RestrictHead(ids));
  id_list_ = ids;
  ids_ = torch::tensor(ids, torch::kInt64);
  return absl::OkStatus();
}

absl::Status ArDrafter::Begin(const std::vector<int64_t>& prompt) {
  if (prompt.empty()) return absl::InvalidArgumentError("ar drafter: empty prompt");
  decoder_->reset();
  cached_.clear();
  return absl::OkStatus();
}

Draft ArDrafter::Propose(const DraftRequest& req) {
  const std::vector<int64_t>& context = req.context;
  const int64_t gamma = req.gamma;
  const SamplingParams& params = req.params;
  torch::NoGradGuard no_grad;
  Draft draft;
  if (gamma <= 0 || context.empty()) return draft;
  // Keep the cached prefix the context still agrees with; at least the last context token
  // is fed again so that its logits exist.
  size_t common = 0;
  while (common < cached_.size() && common < context.size() && cached_[common] == context[common]) ++common;
  common = std::min(common, context.size() - 1);
  decoder_->truncate(static_cast<int64_t>(common));
  cached_.resize(common);
  std::vector<int64_t> feed(context.begin() + common, context.end());
  std::vector<at::Tensor> probs;
  for (int64_t i = 0; i < gamma; ++i) {
    if (decoder_->length() + static_cast<int64_t>(feed.size()) > decoder_->capacity()) break;
    DecodeOptions fo;
    fo.prefill = feed.size() > 1;  // the prompt: the drafter's rows need not be exact
    const at::Tensor logits = decoder_->forward(feed, fo)[0];  // [V], the last fed token's
    cached_.insert(cached_.end(), feed.begin(), feed.end());
    // Greedy: q is the plain softmax (verification ignores it; tree top-k branches use it).
    at::Tensor q = params.greedy() ? logits.softmax(-1) : SamplingProbs(logits, params);
    int64_t tok = params.greedy() ? GreedyTokens(logits).item<int64_t>() : req.sampler.SampleFromProbs(q);
    if (ids_.defined()) {  // subset index -> target id; q zero outside the subset
      tok = id_list_[static_cast<size_t>(tok)];
      q = ExpandToVocab(q, ids_, decoder_->config().vocab_size);
    }
    draft.tokens.push_back(tok);
    probs.push_back(q);
    feed = {tok};  // the next step feeds the token just proposed
  }
  if (!probs.empty()) draft.probs = at::stack(probs);
  return draft;
}

}  // namespace augur
