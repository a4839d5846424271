// The training loop for any LlamaModel and any objective (train/objective.h; default: the
// causal LM): AdamW, warmup + cosine schedule, gradient accumulation, clipping, autocast on
// CUDA, periodic validation, atomic checkpoints with trainer state, exact resume, and an
// optional best checkpoint selected by a validation metric.
//
// Shapes: B sequences per micro-batch, T tokens per sequence, V vocab. A batch tensor is
// int64 [B, T+1]: inputs are [:, :T], targets [:, 1:].
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/model.h"
#include "core/status.h"
#include "train/objective.h"

namespace augur::train {

struct TrainOptions {
  std::string out_dir;
  int64_t steps = 1000;       // total optimizer steps (a resumed run continues to this)
  int64_t stop_after = 0;     // stop (with a checkpoint) after this many steps of this run;
                              // 0 = run to `steps`. The schedule still spans `steps`.
  int64_t batch = 8;          // sequences per micro-batch
  int64_t seq_len = 256;
  int64_t grad_accum = 1;     // micro-batches per optimizer step
  double lr = 1e-3;
  int64_t warmup = 100;
  double min_lr_ratio = 0.1;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double clip = 1.0;          // max global grad norm; 0 = off
  int64_t eval_every = 200;   // 0 = only after the last step
  int64_t eval_batches = 8;
  int64_t save_every = 500;   // 0 = only after the last step
  int64_t log_every = 10;     // metrics.jsonl / plain progress lines
  uint64_t seed = 0;          // model init and data order
  bool resume = false;
  std::string log_path;       // "" = <out_dir>/metrics.jsonl
  std::string device = "cpu";       // cpu | cuda | cuda:N | auto
  std::string dtype = "float32";    // autocast dtype on CUDA: float32 (off) | bfloat16
  int threads = 0;                  // 0 = leave torch's default
  bool progress = true;             // progress bar / lines on stderr
  std::string command_line;         // provenance

  nlohmann::json ToJson() const;
  // Reads the fields present in `j` over the current values.
  absl::Status MergeJson(const nlohmann::json& j, std::string_view source);
  absl::Status Validate() const;
};

// Where batches come from. A batch is a pure function of its index, so a resumed run sees
// exactly the batches the uninterrupted run would have seen: optimizer step s uses training
// batches s * grad_accum + m for m in [0, grad_accum).
using BatchFn = std::function<absl::StatusOr<at::Tensor>(int64_t index, int64_t batch, int64_t seq_len)>;

// The data a run trains on: the batches of the LM objective, and the identity of the data
// (fingerprints, tokenizer) for every objective.
struct TrainData {
  BatchFn train;                   // the LM objective's batches (other objectives: may be null)
  BatchFn valid;                   // null: no validation; batches 0..eval_batches-1 are used
  std::string source;              // the store's path, for messages and train_config.json
  std::string data_fingerprint;
  std::string tokenizer_fingerprint;
  std::string tokenizer_model;     // tokenizer.model to copy into checkpoints ("" = none)
  int64_t vocab_size = 0;          // the store's vocabulary (0 = unknown); must fit the model
  // Called before optimizer step `step` (0-based); for instrumentation and tests.
  std::function<void(int64_t step, LlamaModel& model)> before_step;
};

// What a run trains beyond TrainData and TrainOptions.
struct TrainJob {
  // The loss and the validation. Null: the causal-LM objective over data.train/data.valid.
  TrainObjective* objective = nullptr;
  // A fresh run starts from a copy of these weights (same config as `cfg`) instead of a
  // random init from opts.seed; ignored on resume. E.g. a student initialised from a target.
  LlamaModel init{nullptr};
  // Kind and provenance for each checkpoint's augur.json. data_fingerprint,
  // tokenizer_fingerprint and command_line are filled from TrainData/TrainOptions when empty.
  AugurMeta meta;
  // Also keep <out_dir>/best: the checkpoint with the highest value of this validation
  // metric (e.g. "alpha"); "" = none. Its augur.json records "selected_by" {metric, value,
  // step}, which a resumed run reads back so selection continues across runs.
  std::string select_metric;
  // Called once on the model when it holds its starting weights (fresh, from `init`, or
  // resumed), on its device, before the optimizer is made; null = nothing. It may install
  // LinearBackends (e.g. fake-quantized linears for QAT) but must not replace parameters.
  // A resumed run calls it again, so whatever it installs must be a pure function of the
  // weights for resume to stay exact.
  std::function<absl::Status(LlamaModel&)> prepare;
  // A model other than a LlamaModel (an EAGLE head): when `module` is set the trainer
  // optimizes, checkpoints and resumes it through these instead of a LlamaModel of `cfg`
  // (init and prepare are then unused, and the objective's Loss/Validate receive a null
  // LlamaModel: the objective holds the module itself).
  struct Custom {
    std::shared_ptr<torch::nn::Module> module;
    // Writes the model's files (config, weights, augur.json with `meta`) into `dir`.
    std::function<absl::Status(const std::string& dir, const AugurMeta& meta)> save;
    // Resume: reads the weights saved in `dir` into `module` (same shape, else an error).
    std::function<absl::Status(const std::string& dir)> load;
    int64_t parameters = 0;
    nlohmann::json config = nlohmann::json::object();  // train_config.json "model"
  };
  Custom custom;
};

struct TrainResult {
  int64_t start_step = 0;  // > 0 when resumed
  int64_t steps = 0;       // optimizer steps done when Train returned
  double loss = 0;         // training loss of the last step
  double valid_loss = -1;  // last validation loss (-1 = none)
  double tokens_per_s = 0; // training throughput of this run (first step excluded when > 1)
  std::vector<double> losses;  // per step of this run
  Metrics valid_metrics;       // the last validation's figures (empty = none)
  double best_value = -1;      // select_metric of <out_dir>/best (-1 = none)
  int64_t best_step = -1;
};

// Trains a model of `cfg` (fresh, from opts.seed) or, with opts.resume, continues the run in
// opts.out_dir. Writes out_dir/train_config.json at the start, checkpoints (HF directory +
// trainer_state.json + trainer_state.pt) every save_every steps and at the end, and
// metrics.jsonl. A non-finite loss or gradient norm stops the run with an error and leaves
// the last good checkpoint in place.
absl::StatusOr<TrainResult> Train(const ModelConfig& cfg, const TrainData& data, const TrainOptions& opts);
// The same loop for any objective, initial weights and checkpoint kind (see TrainJob).
absl::StatusOr<TrainResult> Train(const ModelConfig& cfg, const TrainData& data, const TrainOptions& opts,
                                  const TrainJob& job);

// The causal-LM objective: next-token cross-entropy on data.train batches (micro-batch m of
// step s is batch s * grad_accum + m), validation loss over data.valid batches
// 0..eval_batches-1 (metrics valid_loss, valid_ppl). Batches are checked against
// `vocab_size` and the options' batch and seq_len.
std::unique_ptr<TrainObjective> MakeLanguageModelObjective(const TrainData& data, const TrainOptions& opts,
                                                           int64_t vocab_size);

// Process-wide glibc malloc settings for training: keep freed memory in the heap instead
// of returning it to the OS (no trim, large mmap threshold), so the step's large
// activation and gradient buffers are reused instead of being mapped, page-faulted and
// zeroed again every step. Measured on the 2-core CPU (target-s, B=8, T=256): ~40% fewer
// page faults, ~5% faster steps on 1 thread, within noise on 2 (docs/PERF.md). Call once,
// before training; no-op off glibc.
void TuneAllocatorForTraining();

// Mean next-token cross-entropy of `batch` [B, T+1] (float32 scalar, with grad).
at::Tensor LanguageModelLoss(LlamaModel& model, const at::Tensor& batch);

// Backward of the mean loss over `micro_batches` (each weighted 1/n, so n micro-batches of
// B equal one batch of nB when all have the same T); gradients accumulate into .grad.
// Returns the mean loss as a detached scalar tensor.
at::Tensor AccumulateGradients(LlamaModel& model, const std::vector<at::Tensor>& micro_batches);

// Mean validation loss over batches 0..n-1 of `valid` (no grad).
absl::StatusOr<double> EvaluateLoss(LlamaModel& model, const BatchFn& valid, int64_t n, int64_t batch,
                                    int64_t seq_len);

}  // namespace augur::train
