// NAT distillation data and objective: packed PARD-style batches cut from a teacher store
// (eval/nat_layout.h), the KD loss of every predicting slot against the target's stored
// top-k distribution of its row, and the expected acceptance per offset.
//
// The teacher store's row r is the target's distribution of token r+1 given tokens [0, r]
// of a target-generated sequence. A NAT slot that predicts row r at offset k sees only the
// tokens [0, r-k+1] (its anchor); KD against row r teaches it the target's distribution of
// the token k positions ahead given the true (target-generated) tokens in between, so no
// online target is needed.
//
// Shapes: B windows per batch, T packed slots, N predicting slots, K teacher top-k,
// V vocab, G gamma.
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
  at::Tensor pred_index;        // int64 [N]: b*T + slot
  at::Tensor pred_offset;       // int64 [N]: 1..G
  at::Tensor teacher_ids;       // int64 [N,K]
  at::Tensor teacher_logprobs;  // float32 [N,K]
  at::Tensor teacher_rest;      // float32 [N]
  int64_t windows = 0;          // B
  int64_t real_tokens = 0;      // window tokens in the batch (for tokens/s)
  NatBatch to(const at::Device& device) const;  // every tensor moved
};

struct NatDataOptions {
  int64_t gamma = 4;
  int64_t mask_id = 4;
  int64_t seq_len = 128;        // window length L (shorter sequences are padded)
  int64_t groups_per_seq = 16;  // mask groups per window (0 = every anchor)
  double valid_fraction = 0.05; // the last ceil(f*S) sequences are held out
  uint64_t seed = 0;
};

// Windows of a teacher store, split by sequence into training and held-out parts. Batches
// are pure functions of their index (exact resume).
class NatTeacherData {
 public:
  static absl::StatusOr<NatTeacherData> Open(std::shared_ptr<const TeacherStore> store, const NatDataOptions& opts);

  // T of every batch: seq_len + groups*(gamma-1).
  int64_t packed_len() const;
  int64_t num_train() const { return static_cast<int64_t>(train_.size()); }
  int64_t num_valid() const { return static_cast<int64_t>(valid_.size()); }
  const NatDataOptions& options() const { return opts_; }

  absl::StatusOr<NatBatch> TrainBatch(int64_t index, int64_t batch) const;
  // Held-out batches (same windows every call for a given index).
  absl::StatusOr<NatBatch> ValidBatch(int64_t index, int64_t batch) const;

 private:
  absl::StatusOr<NatBatch> Make(const std::vector<int64_t>& seqs, uint64_t stream, int64_t index,
                                int64_t batch) const;
  std::shared_ptr<const TeacherStore> store_;
  NatDataOptions opts_;
  std::vector<int64_t> train_, valid_;  // sequence indices
};

// The logits of every predicting slot: float32 [N,V].
at::Tensor NatPredLogits(LlamaModel& model, const NatBatch& batch);

struct NatLossResult {
  at::Tensor loss;                  // scalar with grad: the mean over offsets of each offset's mean KD loss
  std::vector<double> per_offset;   // [G] detached per-offset means (NaN where the batch has none)
};
NatLossResult NatLoss(LlamaModel& model, const NatBatch& batch, const KdOptions& kd, int64_t gamma);

// Per-offset sums of sum_x min(p_target, q_draft) (ExpectedAcceptanceTopK) and counts.
struct NatAcceptance {
  std::vector<double> sum, count;  // [G]
  void Add(const NatAcceptance& other);
  std::vector<double> alpha() const;  // sum/count per offset (0 where no count)
  double mean() const;                // mean of alpha over offsets 1..G
};
NatAcceptance NatExpectedAcceptance(LlamaModel& model, const NatBatch& batch, int64_t gamma);

// Expected acceptance on held-out batches 0..n-1 (no grad; model mode restored).
absl::StatusOr<NatAcceptance> EvaluateNatAcceptance(LlamaModel& model, const NatTeacherData& data, int64_t n,
                                                    int64_t batch);

}  // namespace augur::distill
