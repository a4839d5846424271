#include "distill/nat_data.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <random>

#include "eval/nat_layout.h"

namespace augur::distill {
namespace {

// One generator per (seed, stream, batch index, row): batches do not depend on the order in
// which they are made.
uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t x = a ^ (b + 0x9E3779B97F4A7C15ULL + (a << 6) + (a >> 2));
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 29;
  return x;
}

}  // namespace

NatBatch NatBatch::to(const at::Device& device) const {
  NatBatch b = *this;
  for (at::Tensor* t : {&b.ids, &b.positions, &b.attn_mask, &b.pred_index, &b.pred_offset, &b.teacher_ids,
                        &b.teacher_logprobs, &b.teacher_rest})
    *t = t->to(device);
  return b;
}

absl::StatusOr<NatTeacherData> NatTeacherData::Open(std::shared_ptr<const TeacherStore> store,
                                                    const NatDataOptions& opts) {
  const std::string& path = store->path();
  if (opts.gamma < 1)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --gamma ", opts.gamma, ": must be >= 1"));
  if (opts.seq_len < opts.gamma)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --seq-len ", opts.seq_len,
                                                   " must be at least --gamma ", opts.gamma));
  if (opts.groups_per_seq < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("distill nat: --groups-per-seq ", opts.groups_per_seq, ": must be >= 0 (0 = every anchor)"));
  if (!(opts.valid_fraction >= 0 && opts.valid_fraction < 1))
    return absl::InvalidArgumentError(
        absl::StrCat("distill nat: --valid-fraction ", opts.valid_fraction, ": must be in [0, 1)"));
  if (store->info().vocab_size > 0 && (opts.mask_id < 0 || opts.mask_id >= store->info().vocab_size))
    return absl::InvalidArgumentError(absl::StrCat("distill nat: mask id ", opts.mask_id, " is outside ", path,
                                                   "'s vocabulary [0, ", store->info().vocab_size, ")"));
  const int64_t n = store->num_sequences();
  if (n < 1) return absl::InvalidArgumentError(absl::StrCat("distill nat: ", path, ": no sequences"));
  int64_t n_valid = opts.valid_fraction > 0 ? static_cast<int64_t>(std::ceil(opts.valid_fraction * n)) : 0;
  if (n_valid >= n)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: ", path, ": ", n,
                                                   " sequence(s) leave none for training after holding out ",
                                                   n_valid, "; generate more or lower --valid-fraction"));
  NatTeacherData d;
  d.store_ = std::move(store);
  d.opts_ = opts;
  for (int64_t s = 0; s < n; ++s) (s < n - n_valid ? d.train_ : d.valid_).push_back(s);
  return d;
}

int64_t NatTeacherData::packed_len() const {
  const int64_t max_groups = opts_.seq_len - opts_.gamma + 1;
  const int64_t groups = opts_.groups_per_seq > 0 ? std::min(opts_.groups_per_seq, max_groups) : max_groups;
  return NatPackedLength(opts_.seq_len, groups, opts_.gamma);
}

absl::StatusOr<NatBatch> NatTeacherData::TrainBatch(int64_t index, int64_t batch) const {
  return Make(train_, 1, index, batch);
}

absl::StatusOr<NatBatch> NatTeacherData::ValidBatch(int64_t index, int64_t batch) const {
  if (valid_.empty()) return absl::FailedPreconditionError("distill nat: no held-out sequences");
  return Make(valid_, 2, index, batch);
}

absl::StatusOr<NatBatch> NatTeacherData::Make(const std::vector<int64_t>& seqs, uint64_t stream, int64_t index,
                                              int64_t batch) const {
  const int64_t T = packed_len(), G = opts_.gamma;
  const int64_t K = store_->info().top_k;
  std::vector<int64_t> ids, positions, pred_index, pred_offset, t_ids;
  std::vector<float> t_lp, t_rest;
  std::vector<at::Tensor> masks;
  NatBatch out;
  for (int64_t b = 0; b < batch; ++b) {
    std::mt19937_64 rng(Mix(Mix(Mix(opts_.seed, stream), static_cast<uint64_t>(index)), static_cast<uint64_t>(b)));
    const int64_t s = seqs[rng() % seqs.size()];
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store_->Read(s));
    const int64_t len = seq.length();
    if (len < 1) return absl::DataLossError(absl::StrCat("distill nat: ", store_->path(), ": sequence ", s, " is empty"));
    const int64_t L = std::min(len, opts_.seq_len);
    const int64_t start = len > L ? static_cast<int64_t>(rng() % static_cast<uint64_t>(len - L + 1)) : 0;
    std::vector<int64_t> window(seq.tokens.begin() + start, seq.tokens.begin() + start + L);
    const auto anchors = ChooseNatAnchors(L, G, opts_.groups_per_seq, rng());
    AUGUR_ASSIGN_OR_RETURN(NatPacked p, PackNatWindow(window, anchors, G, opts_.mask_id, T));
    ids.insert(ids.end(), p.ids.begin(), p.ids.end());
    positions.insert(positions.end(), p.positions.begin(), p.positions.end());
    masks.push_back(p.attn_mask);
    for (size_t e = 0; e < p.pred_slot.size(); ++e) {
      const int64_t row = start + p.pred_row[e];
      pred_index.push_back(b * T + p.pred_slot[e]);
      pred_offset.push_back(p.pred_offset[e]);
      for (int64_t k = 0; k < K; ++k) {
        t_ids.push_back(seq.topk_ids[row * K + k]);
        t_lp.push_back(seq.topk_logprobs[row * K + k]);
      }
      t_rest.push_back(seq.rest_logmass[row]);
    }
    out.real_tokens += L;
  }
  const auto lo = torch::TensorOptions().dtype(torch::kInt64);
  const auto fo = torch::TensorOptions().dtype(torch::kFloat32);
  const int64_t N = static_cast<int64_t>(pred_index.size());
  out.windows = batch;
  out.ids = torch::tensor(ids, lo).view({batch, T});
  out.positions = torch::tensor(positions, lo).view({batch, T});
  out.attn_mask = torch::stack(masks);
  out.pred_index = torch::tensor(pred_index, lo);
  out.pred_offset = torch::tensor(pred_offset, lo);
  out.teacher_ids = torch::tensor(t_ids, lo).view({N, K});
  out.teacher_logprobs = torch::tensor(t_lp, fo).view({N, K});
  out.teacher_rest = torch::tensor(t_rest, fo);
  return out;
}

at::Tensor NatPredLogits(LlamaModel& model, const NatBatch& batch) {
  ForwardOptions fo;
  fo.positions = batch.positions;
  fo.attn_mask = batch.attn_mask;
  const at::Tensor logits = model->forward(batch.ids, nullptr, fo).logits;  // [B,T,V]
  return logits.reshape({-1, logits.size(-1)}).index_select(0, batch.pred_index.to(logits.device()));
}

namespace {

// Per-offset means of `values` [N] (offsets 1..G); offsets without entries get count 0.
std::pair<at::Tensor, at::Tensor> PerOffsetSums(const at::Tensor& values, const at::Tensor& offset, int64_t gamma) {
  const at::Tensor idx = offset.to(values.device()) - 1;
  const at::Tensor sums = torch::zeros({gamma}, values.options()).index_add(0, idx, values);
  const at::Tensor counts =
      torch::zeros({gamma}, values.options().requires_grad(false)).index_add(0, idx, torch::ones_like(values.detach()));
  return {sums, counts};
}

}  // namespace

NatLossResult NatLoss(LlamaModel& model, const NatBatch& batch, const KdOptions& kd, int64_t gamma) {
  const at::Tensor logits = NatPredLogits(model, batch);
  const auto dev = logits.device();
  const at::Tensor per = KdLossTopK(logits, batch.teacher_ids.to(dev), batch.teacher_logprobs.to(dev),
                                    batch.teacher_rest.to(dev), kd);  // [N]
  auto [sums, counts] = PerOffsetSums(per, batch.pred_offset, gamma);
  // Each offset weighs the same whatever its number of slots (offset 1 has a slot per
  // window token, the others one per group).
  const at::Tensor present = counts > 0;
  const at::Tensor means = sums / counts.clamp_min(1);
  NatLossResult r;
  r.loss = means.masked_select(present).mean();
  const at::Tensor m = means.detach().to(torch::kCPU), c = counts.to(torch::kCPU);
  for (int64_t k = 0; k < gamma; ++k)
    r.per_offset.push_back(c[k].item<double>() > 0 ? m[k].item<double>() : std::numeric_limits<double>::quiet_NaN());
  return r;
}

void NatAcceptance::Add(const NatAcceptance& o) {
  if (sum.empty()) {
    sum.assign(o.sum.size(), 0);
    count.assign(o.count.size(), 0);
  }
  for (size_t k = 0; k < o.sum.size() && k < sum.size(); ++k) {
    sum[k] += o.sum[k];
    count[k] += o.count[k];
  }
}

std::vector<double> NatAcceptance::alpha() const {
  std::vector<double> a(sum.size(), 0.0);
  for (size_t k = 0; k < sum.size(); ++k) a[k] = count[k] > 0 ? sum[k] / count[k] : 0.0;
  return a;
}

double NatAcceptance::mean() const {
  const auto a = alpha();
  double m = 0;
  for (double x : a) m += x;
  return a.empty() ? 0.0 : m / static_cast<double>(a.size());
}

NatAcceptance NatExpectedAcceptance(LlamaModel& model, const NatBatch& batch, int64_t gamma) {
  torch::NoGradGuard no_grad;
  const at::Tensor logits = NatPredLogits(model, batch);
  const auto dev = logits.device();
  const at::Tensor acc = ExpectedAcceptanceTopK(logits, batch.teacher_ids.to(dev), batch.teacher_logprobs.to(dev),
                                                batch.teacher_rest.to(dev));
  auto [sums, counts] = PerOffsetSums(acc.to(torch::kFloat64), batch.pred_offset, gamma);
  NatAcceptance r;
  const at::Tensor s = sums.to(torch::kCPU), c = counts.to(torch::kCPU);
  for (int64_t k = 0; k < gamma; ++k) {
    r.sum.push_back(s[k].item<double>());
    r.count.push_back(c[k].item<double>());
  }
  return r;
}

absl::StatusOr<NatAcceptance> EvaluateNatAcceptance(LlamaModel& model, const NatTeacherData& data, int64_t n,
                                                    int64_t batch) {
  const bool was_training = model->is_training();
  model->eval();
  NatAcceptance total;
  for (int64_t i = 0; i < n; ++i) {
    AUGUR_ASSIGN_OR_RETURN(NatBatch b, data.ValidBatch(i, batch));
    total.Add(NatExpectedAcceptance(model, b.to(model->device()), data.options().gamma));
  }
  model->train(was_training);
  return total;
}

}  // namespace augur::distill
