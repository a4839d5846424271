// Compact autoregressive drafters by knowledge distillation (augur distill ar): a small
// Llama-family student learns the target's next-token distributions, so that the target
// accepts its guesses as often as possible.
//
// Data, per optimizer step (a pure function of the seed and the step, so resume is exact):
//   off-policy  windows of T tokens of the teacher store's training sequences; the loss is
//               KdLossTopK against the stored top-k + rest mass at each position.
//   on-policy   prompts of teacher sequences; the student samples a continuation (its own
//               KV cache) up to T tokens, the target scores it online (KdLossFull over the
//               generated positions).
//   mix         on-policy with probability lambda per step, else off-policy (generalized
//               KD / DistillSpec).
// Validation: the last eval_sequences sequences of the store are held out of training;
// the target runs online on them and the figures are the exact KD loss (valid_loss) and the
// expected acceptance alpha = mean over positions of sum_x min(p_target, q_draft)
// (ExpectedAcceptanceFull, not the top-k bound), over the continuation positions (all
// positions when the store has no continuations). <out>/best keeps the highest-alpha
// checkpoint.
//
// Shapes: B batch, T tokens, V vocab, K top-k, N selected positions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/model.h"
#include "core/status.h"
#include "distill/kd_loss.h"
#include "train/trainer.h"

namespace augur::distill {

enum class Policy { kOff, kOn, kMix };
absl::StatusOr<Policy> ParsePolicy(const std::string& name);  // off | on | mix
const char* PolicyName(Policy p);

struct ArDistillOptions {
  std::string target;              // checkpoint directory
  std::string teacher;             // teacher store (augur distill gen)
  // preset (draft-xs, ...) | config.json | checkpoint directory (its weights are the init)
  // | "target" (the target's config with init_layers.size() layers, or all of them).
  std::string student = "draft-xs";
  std::string init = "random";     // random | target
  // Target layers copied into student layers 0, 1, ... (--init target). Empty: the same
  // layers when the depths agree, else evenly spaced over the target's depth.
  std::vector<int64_t> init_layers;
  KdOptions kd;
  Policy policy = Policy::kOff;
  double lambda = 0.5;             // mix: probability of an on-policy step
  bool continuation_only = false;  // off-policy loss on continuation positions only
  int64_t eval_sequences = 16;     // held out at the end of the store
  // "" or a quantization scheme (int4-g32, int8, ...): train through fake-quantized linears
  // (distill/qat.h); a resumed run keeps the scheme it started with.
  std::string qat;
  train::TrainOptions train;       // out_dir, steps, batch, seq_len, lr, seed, resume, ...
  std::string command_line;        // provenance (augur.json)

  absl::Status Validate() const;
  nlohmann::json ToJson() const;   // the objective's settings (train_config.json)
};

// The student's config for `spec` (see ArDistillOptions::student); `init_checkpoint` is
// set when spec is a checkpoint directory.
absl::StatusOr<ModelConfig> ResolveStudentConfig(const std::string& spec, const ModelConfig& target,
                                                 const std::vector<int64_t>& init_layers,
                                                 std::string* init_checkpoint);

// The target layer each student layer starts from (ArDistillOptions::init_layers rules).
absl::StatusOr<std::vector<int64_t>> ResolveInitLayers(const std::vector<int64_t>& given, int64_t student_layers,
                                                      int64_t target_layers);

// Copies the target's embeddings, final norm, output head and layers `layers[j]` into
// student layer j. Shapes must agree; the error names the first tensor that differs and
// both shapes. Student layers past layers.size() keep their weights.
absl::Status InitFromTarget(LlamaModelImpl& student, LlamaModelImpl& target, const std::vector<int64_t>& layers);

// Trains (or resumes) a drafter into opts.train.out_dir. With opts.qat the checkpoints are
// the fp32 weights of a fake-quant run; distill::ExportQatDrafter makes the quantized one.
absl::StatusOr<train::TrainResult> DistillAr(const ArDistillOptions& opts);

// Validation figures (valid_loss, alpha, positions) of the student `opts.student` (a
// checkpoint directory, fp32 or quantized, e.g. a corpus-only baseline) on the held-out teacher sequences,
// without training; also logged as an "eval" event to <out>/metrics.jsonl when out_dir is set.
absl::StatusOr<train::Metrics> EvaluateAr(const ArDistillOptions& opts);

}  // namespace augur::distill
