#include "eval/nat_layout.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

namespace augur {

NatInput NatDraftInput(const std::vector<int64_t>& real, int64_t cached, int64_t gamma, int64_t mask_id) {
  TORCH_CHECK(!real.empty() && gamma >= 1, "nat layout: need at least one real token and gamma >= 1");
  NatInput in;
  in.ids = real;
  in.ids.insert(in.ids.end(), gamma - 1, mask_id);
  const int64_t t = static_cast<int64_t>(in.ids.size());
  in.positions.resize(t);
  std::iota(in.positions.begin(), in.positions.end(), cached);
  // Causal over the appended block: real tokens see the real tokens before them, mask slot
  // j sees every real token and the mask slots before it.
  in.attn_mask = torch::ones({t, t}, torch::kBool).tril();
  return in;
}

absl::StatusOr<NatPacked> PackNatWindow(const std::vector<int64_t>& window, std::vector<int64_t> anchors,
                                        int64_t gamma, int64_t mask_id, int64_t total_len) {
  const int64_t L = static_cast<int64_t>(window.size());
  if (gamma < 1) return absl::InvalidArgumentError(absl::StrCat("nat layout: gamma ", gamma, ": must be >= 1"));
  if (L < 1) return absl::InvalidArgumentError("nat layout: empty window");
  std::sort(anchors.begin(), anchors.end());
  for (size_t g = 0; g < anchors.size(); ++g) {
    if (anchors[g] < 0 || anchors[g] > L - gamma)
      return absl::InvalidArgumentError(absl::StrCat("nat layout: anchor ", anchors[g], " outside [0, ", L - gamma,
                                                     "] (window ", L, ", gamma ", gamma, ")"));
    if (g > 0 && anchors[g] == anchors[g - 1])
      return absl::InvalidArgumentError(absl::StrCat("nat layout: anchor ", anchors[g], " given twice"));
  }
  const int64_t groups = static_cast<int64_t>(anchors.size());
  const int64_t packed = NatPackedLength(L, groups, gamma);
  if (total_len == 0) total_len = packed;
  if (total_len < packed)
    return absl::InvalidArgumentError(
        absl::StrCat("nat layout: total_len ", total_len, " is shorter than the packed length ", packed));

  NatPacked out;
  out.anchors = anchors;
  out.ids.reserve(total_len);
  out.positions.reserve(total_len);
  at::Tensor mask = torch::zeros({total_len, total_len}, torch::kBool);
  auto m = mask.accessor<bool, 2>();
  for (int64_t i = 0; i < L; ++i) {
    out.ids.push_back(window[i]);
    out.positions.push_back(i);
    for (int64_t j = 0; j <= i; ++j) m[i][j] = true;
    out.pred_slot.push_back(i);
    out.pred_offset.push_back(1);
    out.pred_row.push_back(i);
  }
  for (int64_t a : anchors) {
    const int64_t first = static_cast<int64_t>(out.ids.size());  // slot of mask 1 of this group
    for (int64_t j = 1; j < gamma; ++j) {
      const int64_t s = first + j - 1;
      out.ids.push_back(mask_id);
      out.positions.push_back(a + j);
      for (int64_t r = 0; r <= a; ++r) m[s][r] = true;
      for (int64_t k = first; k <= s; ++k) m[s][k] = true;
      out.pred_slot.push_back(s);
      out.pred_offset.push_back(j + 1);
      out.pred_row.push_back(a + j);
    }
  }
  // Padding: a row with no visible key would make softmax NaN, so each sees itself; no
  // real or mask slot sees a padding slot.
  for (int64_t s = packed; s < total_len; ++s) {
    out.ids.push_back(mask_id);
    out.positions.push_back(0);
    m[s][s] = true;
  }
  out.attn_mask = mask;
  return out;
}

std::vector<int64_t> ChooseNatAnchors(int64_t window_len, int64_t gamma, int64_t groups, uint64_t seed) {
  std::vector<int64_t> all;
  for (int64_t a = 0; a <= window_len - gamma; ++a) all.push_back(a);
  if (groups <= 0 || static_cast<int64_t>(all.size()) <= groups) return all;
  // Partial Fisher-Yates with a platform-independent generator (std::shuffle's use of the
  // engine is implementation-defined).
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < groups; ++i) {
    const uint64_t span = all.size() - i;
    const int64_t k = i + static_cast<int64_t>(rng() % span);
    std::swap(all[i], all[k]);
  }
  all.resize(groups);
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace augur
