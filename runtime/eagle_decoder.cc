#include "runtime/eagle_decoder.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <vector>

namespace augur {

TorchEagleDecoder::TorchEagleDecoder(EagleHead head, int64_t capacity)
    : head_(std::move(head)), cache_(NewEagleCache(*head_, capacity)), ids_(head_->draft_ids().to(torch::kCPU)) {}

at::Tensor TorchEagleDecoder::Step(absl::Span<const int64_t> tokens, const at::Tensor& g, bool fuse,
                                   absl::Span<const int64_t> positions, const at::Tensor& mask,
                                   at::Tensor* logits) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(tokens.size());
  AUGUR_CHECK(n >= 1 && g.dim() == 2 && g.size(0) == n, "eagle decoder: ", n, " tokens but g ", ShapeString(g.sizes()));
  const int64_t past = cache_.length();
  std::vector<int64_t> pos(positions.begin(), positions.end());
  if (pos.empty())
    for (int64_t i = 0; i < n; ++i) pos.push_back(past + i);
  AUGUR_CHECK(static_cast<int64_t>(pos.size()) == n, "eagle decoder: ", pos.size(), " positions for ", n, " tokens");
  const at::Tensor ids = torch::tensor(std::vector<int64_t>(tokens.begin(), tokens.end()), torch::kInt64).unsqueeze(0);
  const at::Tensor gg = (fuse ? head_->Fuse(g.unsqueeze(0)) : g.unsqueeze(0).to(head_->device()));
  at::Tensor full_mask;
  if (mask.defined()) {
    AUGUR_CHECK(mask.dim() == 2 && mask.size(0) == n && (mask.size(1) == n || mask.size(1) == past + n),
                "eagle decoder: mask ", ShapeString(mask.sizes()), " for ", n, " new and ", past, " cached tokens");
    full_mask = mask.size(1) == n ? at::cat({at::ones({n, past}, torch::kBool), mask.to(torch::kBool)}, -1)
                                  : mask.to(torch::kBool);
    full_mask = full_mask.unsqueeze(0);
  }
  const at::Tensor out = head_->Step(ids, gg, torch::tensor(pos, torch::kInt64), &cache_, full_mask)[0];
  if (logits != nullptr) *logits = head_->Logits(out).to(torch::kCPU);
  return out.to(torch::kCPU, torch::kFloat32);
}

}  // namespace augur#include "core/safetensors.h"

