#include "train/trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <chrono>
#include <cstdio>
#include <limits>
#include <cmath>
#include <memory>

#include <absl/strings/str_format.h>

#include "core/checkpoint.h"
#include "core/device.h"
#include "core/fs.h"
#include "core/progress.h"
#include "train/checkpointing.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace augur::train {
namespace {
using Clock = std::chrono::steady_clock;

// Autocast for the forward pass on CUDA (backward runs outside, as torch.autocast advises).
class CudaAutocast {
 public:
  CudaAutocast(bool on, at::ScalarType dtype) : on_(on) {
    if (!on_) return;
    prev_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    prev_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
    at::autocast::increment_nesting();
  }
  ~CudaAutocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, prev_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, prev_dtype_);
  }

 private:
  bool on_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

// Settings that fix the data order and the meaning of a step; a resumed run must keep them.
constexpr const char* kFrozenOnResume[] = {"batch", "seq_len", "grad_accum", "seed"};

constexpr char kBestDir[] = "best";
constexpr char kBestStaging[] = ".best-staging";
constexpr char kBestOld[] = ".best-old";

}  // namespace

nlohmann::json TrainOptions::ToJson() const {
  return {{"out_dir", out_dir},        {"steps", steps},
          {"stop_after", stop_after},
          {"batch", batch},            {"seq_len", seq_len},
          {"grad_accum", grad_accum},  {"lr", lr},
          {"warmup", warmup},          {"min_lr_ratio", min_lr_ratio},
          {"weight_decay", weight_decay}, {"beta1", beta1},
          {"beta2", beta2},            {"eps", eps},
          {"clip", clip},              {"eval_every", eval_every},
          {"eval_batches", eval_batches}, {"save_every", save_every},
          {"log_every", log_every},    {"seed", seed},
          {"resume", resume},          {"log_path", log_path},
          {"device", device},          {"dtype", dtype},
          {"threads", threads},        {"command_line", command_line}};
}

absl::Status TrainOptions::MergeJson(const nlohmann::json& j, std::string_view source) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat("train: ", std::string(source), ": options are not an object"));
  try {
    auto get = [&](const char* key, auto* field) {
      if (j.contains(key)) *field = j.at(key).get<std::decay_t<decltype(*field)>>();
    };
    get("steps", &steps);
    get("batch", &batch);
    get("seq_len", &seq_len);
    get("grad_accum", &grad_accum);
    get("lr", &lr);
    get("warmup", &warmup);
    get("min_lr_ratio", &min_lr_ratio);
    get("weight_decay", &weight_decay);
    get("beta1", &beta1);
    get("beta2", &beta2);
    get("eps", &eps);
    get("clip", &clip);
    get("eval_every", &eval_every);
    get("eval_batches", &eval_batches);
    get("save_every", &save_every);
    get("log_every", &log_every);
    get("seed", &seed);
    get("device", &device);
    get("dtype", &dtype);
    get("threads", &threads);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("train: ", std::string(source), ": mistyped option (", e.what(), ")"));
  }
  return absl::OkStatus();
}

absl::Status TrainOptions::Validate() const {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError(absl::StrCat("train: ", m)); };
  if (out_dir.empty()) return bad("--out: an output directory is required");
  if (batch <= 0) return bad(absl::StrCat("--batch ", batch, ": must be > 0"));
  if (seq_len <= 0) return bad(absl::StrCat("--seq-len ", seq_len, ": must be > 0"));
  if (grad_accum <= 0) return bad(absl::StrCat("--grad-accum ", grad_accum, ": must be > 0"));
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    return bad(absl::StrCat("--weight-decay ", weight_decay, ": must be >= 0"));
  if (!(clip >= 0) || !std::isfinite(clip)) return bad(absl::StrCat("--clip ", clip, ": must be >= 0 (0 = off)"));
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0))
    return bad("AdamW betas must be in [0, 1) and eps > 0");
  if (eval_every < 0 || eval_batches < 0 || save_every < 0 || log_every < 0)
    return bad("--eval-every, --eval-batches, --save-every and --log-every must be >= 0");
  if (stop_after < 0) return bad(absl::StrCat("--stop-after ", stop_after, ": must be >= 0"));
  if (threads < 0) return bad(absl::StrCat("--threads ", threads, ": must be >= 0 (0 = default)"));
  LrSchedule sched{lr, warmup, steps, min_lr_ratio};
  return sched.Validate();
}

void TuneAllocatorForTraining() {
#if defined(__GLIBC__)
  // 32 MiB is glibc's upper limit for the mmap threshold on 64-bit; setting it explicitly
  // also stops the dynamic threshold from moving.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

namespace {

class Trainer {
 public:
  Trainer(const ModelConfig& cfg, const TrainData& data, const TrainOptions& opts, const TrainJob& job)
      : cfg_(cfg), data_(data), opts_(opts), job_(job) {}

  absl::StatusOr<TrainResult> Run();

 private:
  absl::Status Setup();
  absl::Status Step(int64_t step);
  absl::Status Save();
  absl::Status SaveBest(double value);
  absl::Status Evaluate();
  AugurMeta Meta() const;
  // " alpha 0.612 (best 0.620)" for the progress line; "" without a select_metric.
  std::string SelectedStatus() const {
    if (job_.select_metric.empty() || result_.valid_metrics.empty()) return "";
    return absl::StrFormat(" %s %.4f (best %.4f)", job_.select_metric,
                           MetricOr(result_.valid_metrics, job_.select_metric, 0), best_value_);
  }
  absl::Status WriteTrainConfig();
  std::string Dir(const char* name) const { return opts_.out_dir + "/" + name; }

  ModelConfig cfg_;
  const TrainData& data_;
  TrainOptions opts_;
  const TrainJob& job_;
  std::unique_ptr<TrainObjective> lm_objective_;  // owned when job_.objective is null
  TrainObjective* objective_ = nullptr;
  torch::Device device_{torch::kCPU};
  bool autocast_ = false;
  at::ScalarType autocast_dtype_ = at::kBFloat16;
  LlamaModel model_{nullptr};
  torch::nn::Module* module_ = nullptr;  // what is trained: model_, or job_.custom.module
  bool custom() const { return job_.custom.module != nullptr; }
  int64_t NumParameters() const { return custom() ? job_.custom.parameters : cfg_.num_parameters(); }
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  LrSchedule schedule_;
  TrainerState state_;
  TrainResult result_;
  JsonlLog log_;
  int64_t last_saved_step_ = -1;
  double step_loss_ = 0, step_grad_norm_ = 0, step_lr_ = 0;
  double best_value_ = -std::numeric_limits<double>::infinity();
  int64_t best_step_ = -1;
};

absl::Status Trainer::Setup() {
  AUGUR_RETURN_IF_ERROR(opts_.Validate());
  AUGUR_RETURN_IF_ERROR(cfg_.Validate("train: model config"));
  if (job_.objective != nullptr) {
    objective_ = job_.objective;
  } else {
    if (!data_.train) return absl::InvalidArgumentError("train: no training data was given");
    lm_objective_ = MakeLanguageModelObjective(data_, opts_, cfg_.vocab_size);
    objective_ = lm_objective_.get();
  }
  if (data_.vocab_size > cfg_.vocab_size)
    return absl::InvalidArgumentError(absl::StrCat(
        "train: ", data_.source, ": the store's vocabulary (", data_.vocab_size,
        ") is larger than the model's vocab_size (", cfg_.vocab_size, "); use a config with vocab_size >= ",
        data_.vocab_size));
  if (opts_.seq_len > cfg_.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("train: --seq-len ", opts_.seq_len,
                                                   " exceeds the model's max_position_embeddings ",
                                                   cfg_.max_position_embeddings));
  AUGUR_ASSIGN_OR_RETURN(device_, ParseDevice(opts_.device));
  AUGUR_ASSIGN_OR_RETURN(at::ScalarType dtype, ParseDtype(opts_.dtype));
  if (dtype != at::kFloat) {
    if (!device_.is_cuda())
      return absl::InvalidArgumentError(absl::StrCat("train: --dtype ", opts_.dtype,
                                                     ": mixed precision (autocast) is for CUDA only; use "
                                                     "--dtype float32 on the CPU"));
    if (dtype != at::kBFloat16)
      return absl::InvalidArgumentError(absl::StrCat("train: --dtype ", opts_.dtype,
                                                     ": only bfloat16 autocast is supported (float16 needs a "
                                                     "gradient scaler)"));
    autocast_ = true;
    autocast_dtype_ = dtype;
  }
  if (opts_.threads > 0) torch::set_num_threads(opts_.threads);
  AUGUR_RETURN_IF_ERROR(MakeDirs(opts_.out_dir));
  RemoveStaleStaging(opts_.out_dir);

  if (opts_.resume) {
    AUGUR_ASSIGN_OR_RETURN(state_, ReadTrainerState(opts_.out_dir));
    for (const char* key : kFrozenOnResume) {
      const nlohmann::json now = opts_.ToJson().at(key);
      if (state_.options.contains(key) && state_.options.at(key) != now)
        return absl::InvalidArgumentError(absl::StrCat(
            "train: --resume: ", opts_.out_dir, " was trained with ", key, "=", state_.options.at(key).dump(),
            " but this run asks for ", now.dump(), "; the data order depends on it, so keep it unchanged"));
    }
    if (!state_.data_fingerprint.empty() && !data_.data_fingerprint.empty() &&
        state_.data_fingerprint != data_.data_fingerprint)
      return absl::InvalidArgumentError(absl::StrCat("train: --resume: ", data_.source,
                                                     " is not the data this run was trained on (fingerprint ",
                                                     data_.data_fingerprint, " != ", state_.data_fingerprint, ")"));
    if (state_.step > opts_.steps)
      return absl::InvalidArgumentError(absl::StrCat("train: --resume: ", opts_.out_dir, " is at step ",
                                                     state_.step, ", past --steps ", opts_.steps));
    AugurMeta saved_meta;
    if (custom()) {
      AUGUR_RETURN_IF_ERROR(job_.custom.load(opts_.out_dir));
      AUGUR_ASSIGN_OR_RETURN(saved_meta, ReadAugurMeta(opts_.out_dir));
    } else {
      AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadCheckpoint(opts_.out_dir, device_, torch::kFloat32));
      if (ckpt.model->config().ToJson() != cfg_.ToJson())
        return absl::InvalidArgumentError(absl::StrCat("train: --resume: the model in ", opts_.out_dir,
                                                       " differs from --config; omit --config when resuming"));
      model_ = ckpt.model;
      saved_meta = ckpt.meta;
    }
    const auto saved_step = saved_meta.extra.value("train_step", int64_t{-1});
    if (saved_step != state_.step)
      return absl::DataLossError(absl::StrCat("train: --resume: ", opts_.out_dir, ": augur.json is from step ",
                                              saved_step, " but trainer_state.json from step ", state_.step,
                                              " (a save was interrupted); start a new run"));
    // Selection continues across runs: the best so far is recorded in best/augur.json.
    if (!job_.select_metric.empty()) {
      auto text = ReadFile(Dir(kBestDir) + "/augur.json");
      if (text.ok()) {
        const auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j.contains("extra") && j["extra"].contains("selected_by")) {
          const auto& sel = j["extra"]["selected_by"];
          best_value_ = sel.value("value", best_value_);
          best_step_ = sel.value("step", int64_t{-1});
        }
      }
    }
  } else {
    if (HasTrainerState(opts_.out_dir))
      return absl::AlreadyExistsError(absl::StrCat("train: --out ", opts_.out_dir,
                                                   " already holds a training run; pass --resume to continue it "
                                                   "or choose another --out"));
    torch::manual_seed(opts_.seed);
  }
  if (!opts_.resume && !custom()) {
    model_ = LlamaModel(cfg_);
    model_->init_weights(opts_.seed);
    if (job_.init) {
      if (job_.init->config().ToJson() != cfg_.ToJson())
        return absl::InvalidArgumentError("train: the initial model's config differs from the model config");
      torch::NoGradGuard no_grad;
      const auto src = job_.init->named_parameters();
      for (auto& p : model_->named_parameters()) p.value().copy_(src[p.key()]);
    }
  }
  if (!opts_.resume) {
    state_.seed = opts_.seed;
    state_.data_fingerprint = data_.data_fingerprint;
  }
  module_ = custom() ? job_.custom.module.get() : model_.get();
  module_->to(device_);
  module_->train();
  if (job_.prepare && !custom()) AUGUR_RETURN_IF_ERROR(job_.prepare(model_));
  state_.options = opts_.ToJson();

  optimizer_ = MakeAdamW(*module_, {opts_.lr, opts_.beta1, opts_.beta2, opts_.eps, opts_.weight_decay});
  if (opts_.resume) AUGUR_RETURN_IF_ERROR(LoadOptimizerState(*optimizer_, opts_.out_dir));
  schedule_ = {opts_.lr, opts_.warmup, opts_.steps, opts_.min_lr_ratio};
  last_saved_step_ = opts_.resume ? state_.step : -1;
  result_.start_step = state_.step;

  AUGUR_RETURN_IF_ERROR(WriteTrainConfig());
  log_ = JsonlLog(opts_.log_path.empty() ? Dir("metrics.jsonl") : opts_.log_path, /*append=*/true);
  if (!log_.is_open())
    return absl::InvalidArgumentError(absl::StrCat("train: --log ", opts_.log_path, ": cannot open for writing"));
  return absl::OkStatus();
}

absl::Status Trainer::WriteTrainConfig() {
  nlohmann::json j;
  j["options"] = opts_.ToJson();
  j["kind"] = job_.meta.kind;
  j["objective"] = objective_->Describe();
  j["init"] = job_.init ? "given" : "random";
  j["model"] = custom() ? job_.custom.config : cfg_.ToJson();
  j["model_parameters"] = NumParameters();
  j["data"] = {{"source", data_.source},
               {"data_fingerprint", data_.data_fingerprint},
               {"tokenizer_fingerprint", data_.tokenizer_fingerprint},
               {"tokenizer_model", data_.tokenizer_model},
               {"vocab_size", data_.vocab_size}};
  j["resolved"] = {{"device", device_.str()},
                   {"autocast", autocast_ ? DtypeName(autocast_dtype_) : "off"},
                   {"torch_threads", at::get_num_threads()},
                   {"tokens_per_step", objective_->TokensPerMicroBatch() * opts_.grad_accum},
                   {"start_step", state_.step}};
  return WriteFileAtomic(Dir("train_config.json"), j.dump(2) + "\n");
}

absl::Status Trainer::Step(int64_t step) {
  step_lr_ = schedule_.at(step);
  SetLearningRate(*optimizer_, step_lr_);
  optimizer_->zero_grad();
  // Backward of the mean over the micro-batches (each weighted 1/n, so n micro-batches of
  // B equal one batch of nB); the forward runs under autocast when on.
  const double n = static_cast<double>(opts_.grad_accum);
  at::Tensor total = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device_));
  for (int64_t m = 0; m < opts_.grad_accum; ++m) {
    at::Tensor loss;
    {
      CudaAutocast guard(autocast_, autocast_dtype_);
      AUGUR_ASSIGN_OR_RETURN(loss, objective_->Loss(model_, step, m));
    }
    (loss / n).backward();
    total += loss.detach().to(torch::kFloat);
  }
  step_loss_ = (total / n).item<double>();
  const std::string where = absl::StrCat("train: step ", step + 1, "/", opts_.steps, ": ");
  const std::string keep = last_saved_step_ >= 0
                               ? absl::StrCat("the last good checkpoint is ", opts_.out_dir, " (step ",
                                              last_saved_step_, ")")
                               : std::string("no checkpoint was written before it");
  if (!std::isfinite(step_loss_))
    return absl::DataLossError(absl::StrCat(where, "training loss is ", step_loss_, "; stopped without saving; ",
                                            keep, ". Try a lower --lr or more --warmup"));
  std::vector<at::Tensor> params = module_->parameters();
  step_grad_norm_ = torch::nn::utils::clip_grad_norm_(
      params, opts_.clip > 0 ? opts_.clip : std::numeric_limits<double>::infinity());
  if (!std::isfinite(step_grad_norm_))
    return absl::DataLossError(absl::StrCat(where, "gradient norm is ", step_grad_norm_,
                                            "; stopped without saving; ", keep, ". Try a lower --lr or --clip"));
  optimizer_->step();
  state_.step = step + 1;
  state_.loss = step_loss_;
  state_.tokens_seen += objective_->TokensPerMicroBatch() * opts_.grad_accum;
  result_.losses.push_back(step_loss_);
  return absl::OkStatus();
}

absl::Status Trainer::Evaluate() {
  Metrics metrics;
  {
    torch::NoGradGuard no_grad;
    module_->eval();
    auto m = objective_->Validate(model_);
    module_->train();
    if (!m.ok()) return m.status();
    metrics = *std::move(m);
  }
  if (metrics.empty()) return absl::OkStatus();
  result_.valid_metrics = metrics;
  nlohmann::json event = {{"event", "eval"}, {"step", state_.step}};
  for (const auto& [name, value] : metrics) event[name] = value;
  log_.write(event);
  for (const auto& [name, value] : metrics)
    if (!std::isfinite(value))
      return absl::DataLossError(absl::StrCat("train: step ", state_.step, ": validation ", name, " is ", value,
                                              "; stopped without saving"));
  const double vl = MetricOr(metrics, "valid_loss", -1);
  if (vl >= 0) {
    state_.valid_loss = vl;
    result_.valid_loss = vl;
  }
  if (!job_.select_metric.empty()) {
    const double v = MetricOr(metrics, job_.select_metric, std::numeric_limits<double>::quiet_NaN());
    if (std::isnan(v))
      return absl::InvalidArgumentError(absl::StrCat("train: validation has no metric \"", job_.select_metric,
                                                     "\" to select the best checkpoint by"));
    if (v > best_value_) AUGUR_RETURN_IF_ERROR(SaveBest(v));
  }
  return absl::OkStatus();
}

AugurMeta Trainer::Meta() const {
  AugurMeta meta = job_.meta;
  if (meta.data_fingerprint.empty()) meta.data_fingerprint = data_.data_fingerprint;
  if (meta.tokenizer_fingerprint.empty()) meta.tokenizer_fingerprint = data_.tokenizer_fingerprint;
  if (meta.command_line.empty()) meta.command_line = opts_.command_line;
  meta.extra["train"] = {{"tokens_seen", state_.tokens_seen}, {"loss", state_.loss},
                         {"valid_loss", state_.valid_loss}, {"seed", state_.seed}};
  return meta;
}

// <out>/best is replaced as a whole: staged beside it, then swapped in by two renames, so a
// kill leaves either the old or the new best (a leftover staging or old dir is cleared by
// the next save).
absl::Status Trainer::SaveBest(double value) {
  AugurMeta meta = Meta();
  meta.extra["selected_by"] = {{"metric", job_.select_metric}, {"value", value}, {"step", state_.step}};
  SaveOptions save;
  save.tokenizer_model = data_.tokenizer_model;
  const std::string staging = Dir(kBestStaging), best = Dir(kBestDir), old = Dir(kBestOld);
  RemoveTree(staging);
  RemoveTree(old);
  AUGUR_RETURN_IF_ERROR(custom() ? job_.custom.save(staging, meta) : SaveCheckpoint(model_, meta, staging, save));
  if (IsDirectory(best) && std::rename(best.c_str(), old.c_str()) != 0)
    return absl::InternalError(absl::StrCat("train: cannot move ", best, " aside"));
  if (std::rename(staging.c_str(), best.c_str()) != 0)
    return absl::InternalError(absl::StrCat("train: cannot rename ", staging, " to ", best));
  RemoveTree(old);
  best_value_ = value;
  best_step_ = state_.step;
  log_.write({{"event", "best"}, {"step", state_.step}, {job_.select_metric, value}, {"dir", best}});
  return absl::OkStatus();
}

absl::Status Trainer::Save() {
  AugurMeta meta = Meta();
  SaveOptions save;
  save.tokenizer_model = data_.tokenizer_model;
  if (custom()) AUGUR_RETURN_IF_ERROR(SaveTrainingCheckpoint(job_.custom.save, *optimizer_, state_, meta, opts_.out_dir));
  else AUGUR_RETURN_IF_ERROR(SaveTrainingCheckpoint(model_, *optimizer_, state_, meta, save, opts_.out_dir));
  last_saved_step_ = state_.step;
  log_.write({{"event", "save"}, {"step", state_.step}, {"dir", opts_.out_dir}});
  return absl::OkStatus();
}

absl::StatusOr<TrainResult> Trainer::Run() {
  AUGUR_RETURN_IF_ERROR(Setup());
  const int64_t tokens_per_step = objective_->TokensPerMicroBatch() * opts_.grad_accum;
  log_.write({{"event", "start"}, {"step", state_.step}, {"steps", opts_.steps}, {"resume", opts_.resume},
              {"tokens_per_step", tokens_per_step}, {"parameters", NumParameters()},
              {"threads", at::get_num_threads()}, {"device", device_.str()}});

  const int64_t end_step =
      opts_.stop_after > 0 ? std::min(opts_.steps, state_.step + opts_.stop_after) : opts_.steps;
  // The bar counts this run's steps (so its rate and ETA are right after a resume); the
  // status names the absolute step.
  std::unique_ptr<Progress> bar;
  if (opts_.progress) bar = std::make_unique<Progress>("train", end_step - state_.step, "step");
  const double elapsed_before = state_.elapsed_s;
  const auto run_start = Clock::now();
  auto interval_start = run_start;
  auto timed_start = run_start;  // throughput excludes the first (warm-up) step when possible
  int64_t interval_steps = 0, timed_steps = 0;

  auto fail = [&](const absl::Status& st) {
    log_.write({{"event", "error"}, {"step", state_.step}, {"message", std::string(st.message())}});
    if (bar) bar->finish("stopped");
    return st;
  };

  for (int64_t step = state_.step; step < end_step; ++step) {
    if (data_.before_step) data_.before_step(step, model_);
    absl::Status st = Step(step);
    if (!st.ok()) return fail(st);
    const auto now = Clock::now();
    ++interval_steps;
    if (step == result_.start_step && end_step - step > 1) {
      timed_start = now;  // drop the warm-up step from the throughput
    } else {
      ++timed_steps;
    }
    state_.elapsed_s = elapsed_before + std::chrono::duration<double>(now - run_start).count();
    const double interval_s = std::chrono::duration<double>(now - interval_start).count();
    const double tok_s = interval_s > 0 ? interval_steps * tokens_per_step / interval_s : 0;
    const bool last = step + 1 == end_step;
    if (opts_.log_every > 0 && ((step + 1) % opts_.log_every == 0 || last)) {
      log_.write({{"event", "step"}, {"step", step + 1}, {"loss", step_loss_}, {"lr", step_lr_},
                  {"grad_norm", step_grad_norm_}, {"tokens", state_.tokens_seen}, {"tok_per_s", tok_s},
                  {"interval_steps", interval_steps}, {"interval_s", interval_s}, {"elapsed_s", state_.elapsed_s}});
      interval_start = now;
      interval_steps = 0;
    }
    if (bar)
      bar->update(step + 1 - result_.start_step,
                  absl::StrFormat("%sloss %.4f lr %.2e tok/s %.0f%s",
                                  result_.start_step > 0 ? absl::StrFormat("step %d/%d ", step + 1, opts_.steps) : "",
                                  step_loss_, step_lr_, tok_s, SelectedStatus()));
    if ((opts_.eval_every > 0 && (step + 1) % opts_.eval_every == 0) || last) {
      st = Evaluate();
      if (!st.ok()) return fail(st);
    }
    if ((opts_.save_every > 0 && (step + 1) % opts_.save_every == 0) || last) {
      st = Save();
      if (!st.ok()) return fail(st);
    }
  }
  const double timed_s = std::chrono::duration<double>(Clock::now() - timed_start).count();
  result_.steps = state_.step;
  result_.loss = state_.loss;
  result_.tokens_per_s = timed_s > 0 ? timed_steps * tokens_per_step / timed_s : 0;
  result_.best_value = best_step_ >= 0 ? best_value_ : -1;
  result_.best_step = best_step_;
  if (state_.step == result_.start_step && last_saved_step_ != state_.step) {
    absl::Status st = Save();  // nothing to train (resumed at the end): still leave a checkpoint
    if (!st.ok()) return fail(st);
  }
  log_.write({{"event", "end"}, {"step", state_.step}, {"loss", state_.loss}, {"valid_loss", state_.valid_loss},
              {"valid_ppl", state_.valid_loss >= 0 ? std::exp(state_.valid_loss) : -1.0},
              {"tok_per_s", result_.tokens_per_s}, {"timed_steps", timed_steps}, {"elapsed_s", state_.elapsed_s}});
  if (bar)
    bar->finish(absl::StrFormat("loss %.4f%s%s tok/s %.0f", state_.loss,
                                state_.valid_loss < 0 ? std::string()
                                : MetricOr(result_.valid_metrics, "valid_ppl", -1) >= 0  // LM: a perplexity
                                    ? absl::StrFormat(" valid %.4f ppl %.1f", state_.valid_loss, std::exp(state_.valid_loss))
                                    : absl::StrFormat(" valid %.4f", state_.valid_loss),
                                SelectedStatus(), result_.tokens_per_s));
  return result_;
}

}  // namespace

absl::StatusOr<TrainResult> Train(const ModelConfig& cfg, const TrainData& data, const TrainOptions& opts) {
  return Train(cfg, data, opts, TrainJob{});
}

absl::StatusOr<TrainResult> Train(const ModelConfig& cfg, const TrainData& data, const TrainOptions& opts,
                                  const TrainJob& job) {
  Trainer trainer(cfg, data, opts, job);
  try {
    return trainer.Run();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("train: ", e.what_without_backtrace()));
  }
}

}  // namespace augur::train
