// What a training run minimises and what its validation measures. The trainer
// (train/trainer.h) owns the loop: AdamW, schedule, accumulation, clipping, autocast,
// checkpoints, exact resume, progress and JSONL logs. An objective owns the data and the
// loss: the causal-LM objective (augur train) and the distillation objectives (augur
// distill ar|nat) share one loop this way.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/model.h"
#include "core/status.h"

namespace augur::train {

// Named validation figures in log order, e.g. {{"valid_loss", 2.3}, {"alpha", 0.61}}.
using Metrics = std::vector<std::pair<std::string, double>>;

class TrainObjective {
 public:
  virtual ~TrainObjective() = default;

  // The mean loss of micro-batch `micro` (0 <= micro < grad_accum) of optimizer step
  // `step`: a float32 scalar with grad. Runs under autocast when it is on. Exact resume
  // needs it to be a pure function of (model weights, step, micro): derive any randomness
  // (data order, sampling) from them and a seed, never from global RNG state.
  virtual absl::StatusOr<at::Tensor> Loss(LlamaModel& model, int64_t step, int64_t micro) = 0;

  // Validation figures; the trainer calls it with the model in eval mode under
  // torch::NoGradGuard. Empty = this objective does not validate. "valid_loss", when
  // present, is the run's validation loss (trainer state, the end-of-run line).
  virtual absl::StatusOr<Metrics> Validate(LlamaModel& model) = 0;

  // Training tokens one micro-batch consumes (metrics "tokens", tokens/s).
  virtual int64_t TokensPerMicroBatch() const = 0;

  // Written into train_config.json under "objective".
  virtual nlohmann::json Describe() const { return nlohmann::json::object(); }
};

// Looks up a metric by name; `fallback` when absent.
inline double MetricOr(const Metrics& m, const std::string& name, double fallback) {
  for (const auto& [k, v] : m)
    if (k == name) return v;
  return fallback;
}

}  // namespace augur::train
