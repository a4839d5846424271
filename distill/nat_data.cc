#include "distill/nat_data.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <random>

#include "eval/nat_layout.h"

namespace augur::distill {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 29;
  x *= 0x94D049BB133111EBULL;
  return x ^ (x >> 32);
}

}  // namespace

NatBatch NatBatch::to(const at::Device& device) const {
  NatBatch b = *this;
  for (at::Tensor* t : {&b.ids, &b.positions, &b.attn_mask, &b.windows, &b.pred_index, &b.pred_offset, &b.pred_row,
                        &b.teacher_ids, &b.teacher_logprobs, &b.teacher_rest})
    *t = t->to(device);
  return b;
}

absl::StatusOr<NatBatch> MakeNatBatch(const TeacherStore& store, const std::vector<NatWindow>& windows,
                                      int64_t gamma, int64_t mask_id, int64_t total_len) {
  const int64_t B = static_cast<int64_t>(windows.size());
  if (B == 0) return absl::InvalidArgumentError("distill nat: empty batch");
  const int64_t K = store.info().top_k;
  int64_t T = total_len, L = 1;
  for (const auto& w : windows) {
    L = std::max(L, w.length);
    T = std::max(T, NatPackedLength(w.length, w.anchors.size(), gamma));
  }
  std::vector<int64_t> ids, positions, win(B * L, 0), pred_index, pred_offset, pred_row, t_ids;
  std::vector<float> t_lp, t_rest;
  std::vector<at::Tensor> masks;
  NatBatch out;
  for (int64_t b = 0; b < B; ++b) {
    const NatWindow& w = windows[b];
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store.Read(w.sequence));
    if (w.start < 0 || w.length < 1 || w.start + w.length > seq.length())
      return absl::InvalidArgumentError(absl::StrCat("distill nat: ", store.path(), ": window [", w.start, ", ",
                                                     w.start + w.length, ") outside sequence ", w.sequence,
                                                     " of length ", seq.length()));
    std::vector<int64_t> window(seq.tokens.begin() + w.start, seq.tokens.begin() + w.start + w.length);
    std::copy(window.begin(), window.end(), win.begin() + b * L);
    AUGUR_ASSIGN_OR_RETURN(NatPacked p, PackNatWindow(window, w.anchors, gamma, mask_id, T));
    ids.insert(ids.end(), p.ids.begin(), p.ids.end());
    positions.insert(positions.end(), p.positions.begin(), p.positions.end());
    masks.push_back(p.attn_mask);
    const std::vector<int64_t>& anchors = p.anchors;
    for (size_t e = 0; e < p.pred_slot.size(); ++e) {
      const int64_t anchor = p.pred_row[e] - p.pred_offset[e] + 1;
      if (w.min_anchor >= 0 &&
          (anchor < w.min_anchor || (p.pred_offset[e] == 1 && !std::binary_search(anchors.begin(), anchors.end(), anchor))))
        continue;
      const int64_t row = w.start + p.pred_row[e];
      pred_index.push_back(b * T + p.pred_slot[e]);
      pred_offset.push_back(p.pred_offset[e]);
      pred_row.push_back(b * L + p.pred_row[e]);
      for (int64_t k = 0; k < K; ++k) {
        t_ids.push_back(seq.topk_ids[row * K + k]);
        t_lp.push_back(seq.topk_logprobs[row * K + k]);
      }
      t_rest.push_back(seq.rest_logmass[row]);
    }
    out.real_tokens += w.length;
  }
  const auto lo = torch::TensorOptions().dtype(torch::kInt64);
  const auto fo = torch::TensorOptions().dtype(torch::kFloat32);
  const int64_t N = static_cast<int64_t>(pred_index.size());
  out.ids = torch::tensor(ids, lo).view({B, T});
  out.positions = torch::tensor(positions, lo).view({B, T});
  out.attn_mask = torch::stack(masks);
  out.windows = torch::tensor(win, lo).view({B, L});
  out.pred_index = torch::tensor(pred_index, lo);
  out.pred_offset = torch::tensor(pred_offset, lo);
  out.pred_row = torch::tensor(pred_row, lo);
  out.teacher_ids = torch::tensor(t_ids, lo).view({N, K});
  out.teacher_logprobs = torch::tensor(t_lp, fo).view({N, K});
  out.teacher_rest = torch::tensor(t_rest, fo);
  return out;
}

absl::StatusOr<NatTeacherData> NatTeacherData::Open(std::shared_ptr<const TeacherStore> store,
                                                    const NatDataOptions& opts) {
  if (opts.gamma < 1)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --gamma ", opts.gamma, ": must be >= 1"));
  if (opts.seq_len < opts.gamma)
    return absl::InvalidArgumentError(
        absl::StrCat("distill nat: --seq-len ", opts.seq_len, " must be at least --gamma ", opts.gamma));
  if (opts.groups_per_seq < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("distill nat: --groups-per-seq ", opts.groups_per_seq, ": must be >= 0 (0 = every anchor)"));
  if (opts.eval_sequences < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("distill nat: --eval-sequences ", opts.eval_sequences, ": must be >= 0"));
  const int64_t vocab = store->info().vocab_size;
  if (opts.mask_id < 0 || (vocab > 0 && opts.mask_id >= vocab))
    return absl::InvalidArgumentError(absl::StrCat("distill nat: mask id ", opts.mask_id, " is outside ",
                                                   store->path(), "'s vocabulary [0, ", vocab, ")"));
  if (store->num_sequences() <= opts.eval_sequences)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --teacher ", store->path(), " has ",
                                                   store->num_sequences(), " sequences, not more than the ",
                                                   opts.eval_sequences, " held out by --eval-sequences"));
  NatTeacherData d;
  d.store_ = std::move(store);
  d.opts_ = opts;
  d.num_train_ = d.store_->num_sequences() - opts.eval_sequences;
  return d;
}

int64_t NatTeacherData::packed_len() const {
  const int64_t max_groups = opts_.seq_len - opts_.gamma + 1;
  const int64_t groups = opts_.groups_per_seq > 0 ? std::min(opts_.groups_per_seq, max_groups) : max_groups;
  return NatPackedLength(opts_.seq_len, groups, opts_.gamma);
}

absl::StatusOr<NatBatch> NatTeacherData::TrainBatch(int64_t index, int64_t batch) const {
  std::vector<NatWindow> windows;
  for (int64_t b = 0; b < batch; ++b) {
    // One generator per (seed, index, row): a batch does not depend on the ones before it.
    std::mt19937_64 rng(Mix(Mix(Mix(opts_.seed) ^ static_cast<uint64_t>(index)) ^ static_cast<uint64_t>(b)));
    NatWindow w;
    w.sequence = static_cast<int64_t>(rng() % static_cast<uint64_t>(num_train_));
    const int64_t len = store_->sequence_length(w.sequence);
    w.length = std::min(len, opts_.seq_len);
    w.start = len > w.length ? static_cast<int64_t>(rng() % static_cast<uint64_t>(len - w.length + 1)) : 0;
    w.anchors = ChooseNatAnchors(w.length, opts_.gamma, opts_.groups_per_seq, rng());
    windows.push_back(std::move(w));
  }
  return MakeNatBatch(*store_, windows, opts_.gamma, opts_.mask_id, packed_len());
}

std::vector<NatWindow> NatTeacherData::HeldOutWindows() const {
  std::vector<NatWindow> out;
  for (int64_t s = num_train_; s < store_->num_sequences(); ++s) {
    NatWindow w;
    w.sequence = s;
    const int64_t len = store_->sequence_length(s);
    w.length = std::min(len, opts_.seq_len);
    // The drafter drafts once the context ends at the last prompt token (or later). A prompt
    // longer than the window (chat requests quoting code) would leave no anchor, so the window
    // starts half a window before the continuation (or ends at the sequence's end).
    const int64_t first = std::max<int64_t>(0, store_->prompt_len(s) - 1);
    w.start = std::max<int64_t>(0, std::min(first - opts_.seq_len / 2, len - w.length));
    w.min_anchor = first - w.start;
    for (int64_t a = w.min_anchor; a <= w.length - opts_.gamma; ++a) w.anchors.push_back(a);
    if (!w.anchors.empty()) out.push_back(std::move(w));
  }
  return out;
}

at::Tensor NatPredLogits(LlamaModel& model, const NatBatch& batch) {
  ForwardOptions fo;
  fo.positions = batch.positions;
  fo.attn_mask = batch.attn_mask;
  const at::Tensor logits = model->forward(batch.ids, nullptr, fo).logits;  // [B,T,V]
  return logits.reshape({-1, logits.size(-1)}).index_select(0, batch.pred_index.to(logits.device()));
}

PerOffset PerOffsetMeans(const at::Tensor& values, const at::Tensor& offset, int64_t gamma) {
  const at::Tensor idx = offset.to(values.device()) - 1;
  const at::Tensor sums = torch::zeros({gamma}, values.options()).index_add(0, idx, values);
  const at::Tensor counts =
      torch::zeros({gamma}, values.options()).index_add(0, idx, torch::ones_like(values.detach()));
  const at::Tensor means = sums / counts.clamp_min(1);
  PerOffset r;
  r.mean = means.masked_select(counts > 0).mean();
  const at::Tensor m = means.detach().to(torch::kCPU, torch::kDouble), c = counts.to(torch::kCPU, torch::kDouble);
  for (int64_t k = 0; k < gamma; ++k) {
    r.count.push_back(c[k].item<double>());
    r.per_offset.push_back(r.count.back() > 0 ? m[k].item<double>() : std::numeric_limits<double>::quiet_NaN());
  }
  return r;
}

PerOffset NatTopKLoss(LlamaModel& model, const NatBatch& batch, const KdOptions& kd, int64_t gamma) {
  const at::Tensor logits = NatPredLogits(model, batch);
  const auto dev = logits.device();
  const at::Tensor per = KdLossTopK(logits, batch.teacher_ids.to(dev), batch.teacher_logprobs.to(dev),
                                    batch.teacher_rest.to(dev), kd);  // [N]
  return PerOffsetMeans(per, batch.pred_offset, gamma);
}

}  // namespace augur::distill
