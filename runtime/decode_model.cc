#include "runtime/decode_model.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "core/generate_loop.h"
#include "runtime/qlinear.h"
#include "runtime/qmodel.h"

namespace augur {

TorchDecodeModel::TorchDecodeModel(LlamaModel model, int64_t capacity) : model_(std::move(model)) {
  model_->eval();
  cache_ = model_->new_cache(1, capacity);
}

at::Tensor TorchDecodeModel::forward(absl::Span<const int64_t> ids, const DecodeOptions& opts) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(ids.size());
  AUGUR_CHECK(n >= 1, "decode model: no new tokens");
  const auto long_opts = torch::TensorOptions().dtype(torch::kInt64);
  ForwardOptions fo;
  if (!opts.positions.empty()) {
    AUGUR_CHECK(static_cast<int64_t>(opts.positions.size()) == n, "decode model: ", opts.positions.size(),
                " positions for ", n, " tokens");
    fo.positions = torch::tensor(std::vector<int64_t>(opts.positions.begin(), opts.positions.end()), long_opts)
                       .to(model_->device());
  }
  if (opts.attn_mask.defined()) fo.attn_mask = opts.attn_mask.to(model_->device());
  fo.logits_last = opts.logits_last;
  fo.hidden_layers = opts.hidden_layers;
  const at::Tensor x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), long_opts).view({1, n});
  ForwardOutput out = model_->forward(x.to(model_->device()), &cache_, fo);
  hidden_.clear();
  for (const at::Tensor& h : out.hidden) hidden_.push_back(h[0].to(torch::kCPU, torch::kFloat32));
  const at::Tensor logits = out.logits[0].to(torch::kCPU, torch::kFloat32);
  return head_ids_.defined() ? logits.index_select(1, head_ids_) : logits;
}

absl::StatusOr<GenerateResult> Generate(DecodeModel& model, const std::vector<int64_t>& prompt,
                                        const GenerateOptions& opts, const std::function<void(int64_t)>& on_token) {
  AUGUR_RETURN_IF_ERROR(CheckGenerate(model.config(), prompt, opts));
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  // The last new token is never fed back, so the cache holds prompt + max_new - 1 entries.
  const int64_t needed = n_prompt + std::max<int64_t>(opts.max_new, 1) - 1;
  if (needed > model.capacity())
    return absl::InvalidArgumentError(absl::StrCat("generate: prompt (", n_prompt, " tokens) + --max-new ",
                                                   opts.max_new, " needs ", needed, " cache entries; the ",
                                                   model.engine(), " model's cache holds ", model.capacity()));
  torch::NoGradGuard no_grad;
  model.reset();
  return GenerateLoop(
      model.config(), opts,
      [&] {
        // As the speculative engine does: the prompt but its last token on the prefill route,
        // then the last token alone, so on an engine with exact rows greedy output equals the
        // speculative engine's token for token.
        if (n_prompt > 1) {
          DecodeOptions prefill;
          prefill.logits_last = 1;
          prefill.prefill = true;
          model.forward(absl::MakeConstSpan(prompt.data(), prompt.size() - 1), prefill);
        }
        return model.forward(absl::MakeConstSpan(&prompt.back(), 1));  // [1, V]
      },
      [&](int64_t next) { return model.forward(absl::MakeConstSpan(&next, 1)); },
      on_token);
}

absl::Status CheckHeadIds(const std::vector<int64_t>& ids, int64_t vocab) {
  if (ids.empty()) return absl::InvalidArgumentError("draft vocabulary: empty");
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(vocab, 0)), false);
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab)
      return absl::InvalidArgumentError(absl::StrCat("draft vocabulary: token id ", id, " outside [0, ", vocab, ")"));
    if (seen[id]) return absl::InvalidArgumentError(absl::StrCat("draft vocabulary: token id ", id, " twice"));
    seen[id] = true;
  }
  return absl::OkStatus();
}

absl::Status TorchDecodeModel::RestrictHead(const std::vector<int64_t>& ids) {
  AUGUR_RETURN_IF_ERROR(CheckHeadIds(ids, model_->config().vocab_size));
  head_ids_ = torch::tensor(ids, torch::kInt64);
  return absl::OkStatus();
}

at::Tensor TorchDecodeModel::hidden(size_t j) const {
  AUGUR_CHECK(j < hidden_.size(), "decode model: hidden state ", j, " of ", hidden_.size(), " kept");
  return hidden_[j];
}

void TorchDecodeModel::compact(int64_t base, absl::Span<const int64_t> keep) {
  cache_.compact(base, torch::tensor(std::vector<int64_t>(keep.begin(), keep.end()), torch::kInt64));
}

at::Tensor TorchDecodeModel::canonical_logits(absl::Span<const int64_t> context) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(context.size());
  AUGUR_CHECK(n >= 1, "decode model: empty context");
  ForwardOptions fo;
  fo.logits_last = 1;
  const at::Tensor x =
      torch::tensor(std::vector<int64_t>(context.begin(), context.end()), torch::kInt64).view({1, n});
  return model_->forward(x.to(model_->device()), nullptr, fo).logits[0][-1].to(torch::kCPU, torch::kFloat32);
}

std::string TorchDecodeModel::precision() const {
  LlamaModel m = model_;
  const std::string dense = model_->model->embed_tokens->weight.scalar_type() == torch::kFloat32 ? "fp32"
                            : model_->model->embed_tokens->weight.scalar_type() == torch::kBFloat16 ? "bf16"
                                                                                                     : "fp16";
  std::string body, head;
  for (const LinearSlot& s : ModelLinears(m, /*with_head=*/true)) {
    const auto* q = *s.backend ? dynamic_cast<const QuantLinearBackend*>(s.backend->get()) : nullptr;
    const std::string p = q != nullptr ? q->weight().scheme.name() : *s.backend ? "custom" : dense;
    if (s.layer < 0) head = p;
    else if (body.empty()) body = p;
    else if (body != p) body = "mixed";
  }
  return head == body || head.empty() ? body : absl::StrCat(body, " + ", head, " head");
}

}  // namespace augur
