// NAT (parallel) drafters by knowledge distillation (augur distill nat): a small
// Llama-family student learns to propose gamma tokens in one forward over
// [last token, <mask> x (gamma-1)] (eval/nat_layout.h), each slot trained by KD against
// the target's distribution of the token at its offset.
//
// Training (off-policy, no online target): packed windows of the teacher store's training
// sequences with --groups-per-seq mask groups each (distill/nat_data.h); the loss is
// KdLossTopK against the stored top-k + rest mass of each slot's row, averaged per offset
// and then over offsets 1..gamma (equal weight per offset).
// Validation: the last eval_sequences sequences are held out; the target runs online on
// them (one causal forward per window: row r of it is the exact distribution every slot
// predicting row r is compared with), and the figures are, per offset j = 1..gamma, the
// expected acceptance alpha_j = mean over contexts of sum_x min(p_target, q_draft)
// (ExpectedAcceptanceFull), on every context that ends at the last prompt token or later;
// "alpha" is their mean, "valid_loss" the exact KD loss (mean over offsets). <out>/best
// keeps the highest-alpha checkpoint. The trainer is train/trainer.h's shared loop.
//
// Shapes: N predicting slots, V vocab, G gamma.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "distill/kd_loss.h"
#include "train/trainer.h"

namespace augur::distill {

struct NatDistillOptions {
  std::string target;              // checkpoint directory
  std::string teacher;             // teacher store (augur distill gen)
  // preset | config.json | checkpoint directory | "target" (distill/ar_distill.h rules)
  std::string student = "draft-xs";
  std::string init = "random";     // random | target
  std::vector<int64_t> init_layers;
  int64_t gamma = 4;
  int64_t mask_id = -1;            // -1: the target tokenizer's <mask> id
  int64_t groups_per_seq = 16;     // mask groups per training window (0 = every anchor)
  int64_t eval_sequences = 16;     // held out at the end of the store
  KdOptions kd;
  std::string qat;                 // "" or a scheme: fake-quant training (distill/qat.h)
  train::TrainOptions train;       // out_dir, steps, batch, seq_len, lr, seed, resume, ...
  std::string command_line;        // provenance (augur.json)

  absl::Status Validate() const;
  nlohmann::json ToJson() const;   // the objective's settings (train_config.json, augur.json)
};

// The <mask> id to use: opts.mask_id when >= 0, else the target tokenizer's "<mask>" piece.
absl::StatusOr<int64_t> ResolveMaskId(int64_t given, const std::string& tokenizer_model, const std::string& target);

// Trains (or resumes) a NAT drafter into opts.train.out_dir; checkpoints carry kind
// nat-drafter, gamma and the mask id. With opts.qat: as DistillAr.
absl::StatusOr<train::TrainResult> DistillNat(const NatDistillOptions& opts);

// The validation figures (valid_loss, alpha, alpha_1..alpha_G, valid_contexts) of the
// checkpoint opts.student (fp32 or quantized) on the held-out sequences, without training (any model of the
// target's vocabulary: e.g. an untrained student or the target itself).
absl::StatusOr<train::Metrics> EvaluateNat(const NatDistillOptions& opts);

}  // namespace augur::distill
