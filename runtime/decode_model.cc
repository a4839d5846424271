#include "runtime/decode_model.h"

#include <torch/torch.h>

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
    fo.positions = torch::tensor(std::vector<int64_t>(opts.positions.begin(), opts.positions.end()), long_opts);
  }
  fo.attn_mask = opts.attn_mask;
  fo.logits_last = opts.logits_last;
  const at::Tensor x = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), long_opts).view({1, n});
  return model_->forward(x, &cache_, fo).logits[0].to(torch::kCPU, torch::kFloat32);
}

}  // namespace augur
