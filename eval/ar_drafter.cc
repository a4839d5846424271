#include "eval/ar_drafter.h"

#include <torch/torch.h>

namespace augur {

ArDrafter::ArDrafter(LlamaModel model, int64_t capacity, std::string name)
    : model_(std::move(model)), name_(std::move(name)) {
  model_->eval();
  cache_ = model_->new_cache(1, capacity);
}

absl::Status ArDrafter::Begin(const std::vector<int64_t>& prompt) {
  if (prompt.empty()) return absl::InvalidArgumentError("ar drafter: empty prompt");
  cache_.reset();
  cached_.clear();
  return absl::OkStatus();
}

Draft ArDrafter::Propose(const std::vector<int64_t>& context, int64_t gamma, const SamplingParams& params,
                         Sampler& sampler) {
  torch::NoGradGuard no_grad;
  Draft draft;
  if (gamma <= 0 || context.empty()) return draft;
  // Keep the cached prefix the context still agrees with; at least the last context token
  // is fed again so that its logits exist.
  size_t common = 0;
  while (common < cached_.size() && common < context.size() && cached_[common] == context[common]) ++common;
  common = std::min(common, context.size() - 1);
  cache_.truncate(static_cast<int64_t>(common));
  cached_.resize(common);
  const auto opts = torch::TensorOptions().dtype(torch::kInt64);
  std::vector<int64_t> feed(context.begin() + common, context.end());
  std::vector<at::Tensor> probs;
  for (int64_t i = 0; i < gamma; ++i) {
    if (cache_.length() + static_cast<int64_t>(feed.size()) > cache_.capacity()) break;
    ForwardOptions fo;
    fo.logits_last = 1;
    const at::Tensor ids = torch::from_blob(feed.data(), {1, static_cast<int64_t>(feed.size())}, opts).clone();
    const at::Tensor logits = model_->forward(ids, &cache_, fo).logits[0][-1];
    cached_.insert(cached_.end(), feed.begin(), feed.end());
    // Greedy: q is the plain softmax (verification ignores it; tree top-k branches use it).
    const at::Tensor q = (params.greedy() ? logits.softmax(-1) : SamplingProbs(logits, params)).to(torch::kCPU);
    const int64_t tok = params.greedy() ? GreedyTokens(logits).item<int64_t>() : sampler.SampleFromProbs(q);
    draft.tokens.push_back(tok);
    probs.push_back(q);
    feed = {tok};  // the next step feeds the token just proposed
  }
  if (!probs.empty()) draft.probs = at::stack(probs);
  return draft;
}

}  // namespace augur
