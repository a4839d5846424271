// NAT distillation data: packed PARD-style batches cut from a teacher store
// (eval/nat_layout.h), with, for every predicting slot, the teacher-store row whose
// distribution is its target, and the per-offset KD loss / expected acceptance.
//
// The teacher store's row r is the target's distribution of token r+1 given tokens [0, r]
// of a target-generated sequence. A NAT slot that predicts row r at offset k sees only the
// tokens [0, r-k+1] (its anchor); KD against row r teaches it the target's distribution of
// the token k positions ahead given the true (target-generated) tokens in between, so no
// online target is needed to train.
//
// Shapes: B windows per batch, L window tokens, T packed slots, N predicting slots,
// K teacher top-k, V vocab, G gamma.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/status.h"
#include "datasets/teacher_store.h"
#include "distill/kd_loss.h"

namespace augur::distill {

struct NatBatch {
  at::Tensor ids;               // int64 [B,T]
  at::Tensor positions;         // int64 [B,T]
  at::Tensor attn_mask;         // bool [B,T,T]
  at::Tensor windows;           // int64 [B,L]: the real tokens (right-padded with 0)
  at::Tensor pred_index;        // int64 [N]: b*T + slot
  at::Tensor pred_offset;       // int64 [N]: 1..G
  at::Tensor pred_row;          // int64 [N]: b*L + window row (the target's logits row)
  at::Tensor teacher_ids;       // int64 [N,K]
  at::Tensor teacher_logprobs;  // float32 [N,K]
  at::Tensor teacher_rest;      // float32 [N]
  int64_t real_tokens = 0;      // window tokens in the batch
  NatBatch to(const at::Device& device) const;  // every tensor moved
};

// One window of a teacher sequence and its mask groups.
struct NatWindow {
  int64_t sequence = 0;
  int64_t start = 0, length = 0;  // tokens [start, start+length) of the sequence
  std::vector<int64_t> anchors;   // window rows, each in [0, length-gamma]
  // Keep only predictions whose context ends at window row >= min_anchor (validation:
  // where a drafter drafts, i.e. from the last prompt token on). Offset 1 is then kept
  // at anchors only, so every offset is measured on the same contexts.
  int64_t min_anchor = -1;        // -1: every prediction (training)
};

// Packs `windows` into one batch; T = total_len (0: the longest packed window).
absl::StatusOr<NatBatch> MakeNatBatch(const TeacherStore& store, const std::vector<NatWindow>& windows,
                                      int64_t gamma, int64_t mask_id, int64_t total_len = 0);

struct NatDataOptions {
  int64_t gamma = 4;
  int64_t mask_id = 4;
  int64_t seq_len = 128;        // window length L (shorter sequences are padded)
  int64_t groups_per_seq = 16;  // mask groups per training window (0 = every anchor)
  int64_t eval_sequences = 16;  // the last ones of the store are held out
  uint64_t seed = 0;
};

// Training windows: random windows of the store's first S - eval_sequences sequences with
// groups_per_seq random anchors each. A batch is a pure function of its index (exact resume).
class NatTeacherData {
 public:
  static absl::StatusOr<NatTeacherData> Open(std::shared_ptr<const TeacherStore> store, const NatDataOptions& opts);
  int64_t packed_len() const;  // T of every training batch: seq_len + groups*(gamma-1)
  int64_t num_train() const { return num_train_; }
  const NatDataOptions& options() const { return opts_; }
  const TeacherStore& store() const { return *store_; }
  absl::StatusOr<NatBatch> TrainBatch(int64_t index, int64_t batch) const;
  // The held-out windows: each held-out sequence from its start (up to seq_len tokens),
  // every anchor from the last prompt token on.
  std::vector<NatWindow> HeldOutWindows() const;

 private:
  std::shared_ptr<const TeacherStore> store_;
  NatDataOptions opts_;
  int64_t num_train_ = 0;
};

// The logits of every predicting slot: float32 [N,V].
at::Tensor NatPredLogits(LlamaModel& model, const NatBatch& batch);

// Per-offset means of per-prediction `values` [N] and the mean over the offsets present
// (each offset weighs the same whatever its number of slots).
struct PerOffset {
  at::Tensor mean;                 // scalar (keeps grad)
  std::vector<double> per_offset;  // [G], NaN where the batch has none
  std::vector<double> count;       // [G]
};
PerOffset PerOffsetMeans(const at::Tensor& values, const at::Tensor& offset, int64_t gamma);

// KD loss against the stored top-k rows.
PerOffset NatTopKLoss(LlamaModel& model, const NatBatch& batch, const KdOptions& kd, int64_t gamma);

}  // namespace augur::distill
