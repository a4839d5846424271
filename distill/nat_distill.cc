// augur distill nat: the NAT distillation objective over the shared trainer, and the
// held-out per-offset acceptance. See nat_distill.h.
#include "distill/nat_distill.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/device.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "datasets/teacher_store.h"
#include "distill/qat.h"
#include "quantize/qmodel.h"
#include "distill/ar_distill.h"
#include "distill/nat_data.h"

namespace augur::distill {
namespace {

class NatDistillObjective : public train::TrainObjective {
 public:
  NatDistillObjective(const NatDistillOptions& opts, NatTeacherData data, LlamaModel target)
      : opts_(opts), data_(std::move(data)), target_(std::move(target)) {}

  absl::StatusOr<at::Tensor> Loss(LlamaModel& model, int64_t step, int64_t micro) override {
    const int64_t index = step * opts_.train.grad_accum + micro;
    AUGUR_ASSIGN_OR_RETURN(NatBatch b, data_.TrainBatch(index, opts_.train.batch));
    return NatTopKLoss(model, b.to(model->device()), opts_.kd, opts_.gamma).mean;
  }

  absl::StatusOr<train::Metrics> Validate(LlamaModel& model) override;
  int64_t TokensPerMicroBatch() const override { return opts_.train.batch * opts_.train.seq_len; }
  nlohmann::json Describe() const override { return opts_.ToJson(); }

 private:
  absl::Status PrepareValidation();

  const NatDistillOptions& opts_;
  NatTeacherData data_;
  LlamaModel target_;
  // Held-out batches, built once, and the target's logits at every window row of each
  // ([B*L, V]; the target is fixed). A slot predicting row r is compared with row r.
  std::vector<NatBatch> eval_batches_;
  std::vector<at::Tensor> eval_target_rows_;
};

absl::Status NatDistillObjective::PrepareValidation() {
  const auto windows = data_.HeldOutWindows();
  if (windows.empty())
    return absl::InvalidArgumentError(absl::StrCat("distill nat: ", data_.store().path(),
                                                   ": the held-out sequences have no context with ", opts_.gamma,
                                                   " tokens after the prompt to evaluate; lower --gamma or "
                                                   "generate longer continuations"));
  const auto dev = target_->device();
  for (size_t i = 0; i < windows.size(); i += opts_.train.batch) {
    std::vector<NatWindow> chunk(windows.begin() + i,
                                 windows.begin() + std::min(windows.size(), i + opts_.train.batch));
    AUGUR_ASSIGN_OR_RETURN(NatBatch b, MakeNatBatch(data_.store(), chunk, opts_.gamma, data_.options().mask_id));
    const at::Tensor logits = target_->logits(b.windows.to(dev));
    eval_target_rows_.push_back(logits.reshape({-1, logits.size(-1)}));
    eval_batches_.push_back(std::move(b));
  }
  return absl::OkStatus();
}

absl::StatusOr<train::Metrics> NatDistillObjective::Validate(LlamaModel& model) {
  if (opts_.eval_sequences <= 0) return train::Metrics{};
  torch::NoGradGuard no_grad;
  if (eval_batches_.empty()) AUGUR_RETURN_IF_ERROR(PrepareValidation());
  std::vector<at::Tensor> acc, loss, offset;
  for (size_t i = 0; i < eval_batches_.size(); ++i) {
    const at::Tensor student = NatPredLogits(model, eval_batches_[i].to(model->device()));
    const at::Tensor& rows = eval_target_rows_[i];
    const at::Tensor target = rows.index_select(0, eval_batches_[i].pred_row.to(rows.device())).to(student.device());
    acc.push_back(ExpectedAcceptanceFull(student, target).to(torch::kCPU, torch::kDouble));
    loss.push_back(KdLossFull(student, target, opts_.kd).to(torch::kCPU, torch::kDouble));
    offset.push_back(eval_batches_[i].pred_offset);
  }
  const at::Tensor offsets = torch::cat(offset);
  const PerOffset a = PerOffsetMeans(torch::cat(acc), offsets, opts_.gamma);
  const PerOffset l = PerOffsetMeans(torch::cat(loss), offsets, opts_.gamma);
  train::Metrics m = {{"valid_loss", l.mean.item<double>()}, {"alpha", a.mean.item<double>()}};
  for (int64_t j = 0; j < opts_.gamma; ++j) m.emplace_back(absl::StrCat("alpha_", j + 1), a.per_offset[j]);
  m.emplace_back("valid_contexts", a.count[0]);
  return m;
}

// Everything DistillNat and EvaluateNat share: the target, the store, the mask id, and the
// checks that they agree.
struct Setup {
  LoadedCheckpoint target;
  std::string target_fingerprint;
  std::shared_ptr<const TeacherStore> store;
  int64_t mask_id = -1;
  torch::Device device{torch::kCPU};
};

absl::StatusOr<Setup> Prepare(const NatDistillOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.Validate());
  Setup s;
  AUGUR_ASSIGN_OR_RETURN(s.device, ParseDevice(opts.train.device));
  AUGUR_ASSIGN_OR_RETURN(s.target, LoadCheckpoint(opts.target, s.device, torch::kFloat32));
  AUGUR_ASSIGN_OR_RETURN(s.target_fingerprint, CheckpointFingerprint(opts.target));
  s.target.model->eval();
  for (auto& p : s.target.model->parameters()) p.set_requires_grad(false);
  AUGUR_ASSIGN_OR_RETURN(s.store, TeacherStore::Open(opts.teacher));
  const TeacherStoreInfo& info = s.store->info();
  const ModelConfig& tcfg = s.target.model->config();
  if (info.vocab_size != tcfg.vocab_size)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: vocabulary mismatch: --teacher ", opts.teacher,
                                                   " has vocab size ", info.vocab_size, " but --target ",
                                                   opts.target, " has vocab_size ", tcfg.vocab_size));
  if (!info.target_fingerprint.empty() && info.target_fingerprint != s.target_fingerprint)
    return absl::InvalidArgumentError(absl::StrCat(
        "distill nat: --teacher ", opts.teacher, " was generated by another target (fingerprint ",
        info.target_fingerprint.substr(0, 16), ") than --target ", opts.target, " (",
        s.target_fingerprint.substr(0, 16), ")"));
  if (opts.train.seq_len > tcfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --seq-len ", opts.train.seq_len,
                                                   " exceeds the target's max_position_embeddings ",
                                                   tcfg.max_position_embeddings));
  AUGUR_ASSIGN_OR_RETURN(s.mask_id, ResolveMaskId(opts.mask_id, s.target.tokenizer_model, opts.target));
  if (s.mask_id >= tcfg.vocab_size)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --mask-id ", s.mask_id,
                                                   " is outside the target's vocabulary [0, ", tcfg.vocab_size, ")"));
  return s;
}

absl::StatusOr<NatTeacherData> OpenData(const NatDistillOptions& opts, const Setup& s) {
  NatDataOptions d;
  d.gamma = opts.gamma;
  d.mask_id = s.mask_id;
  d.seq_len = opts.train.seq_len;
  d.groups_per_seq = opts.groups_per_seq;
  d.eval_sequences = opts.eval_sequences;
  d.seed = opts.train.seed;
  return NatTeacherData::Open(s.store, d);
}

absl::Status CheckStudentVocab(const NatDistillOptions& opts, const Setup& s, const ModelConfig& student) {
  const int64_t v = s.target.model->config().vocab_size;
  if (student.vocab_size != v)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: vocabulary mismatch: --student ", opts.student,
                                                   " has vocab_size ", student.vocab_size, " but --target ",
                                                   opts.target, " has ", v,
                                                   "; the student shares the target's tokenizer"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> ResolveMaskId(int64_t given, const std::string& tokenizer_model, const std::string& target) {
  if (given >= 0) return given;
  if (tokenizer_model.empty())
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --target ", target,
                                                   " has no tokenizer.model to take the <mask> id from; pass "
                                                   "--mask-id N (an id the target never produces)"));
  AUGUR_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::Load(tokenizer_model));
  if (tok.mask_id() < 0)
    return absl::InvalidArgumentError(absl::StrCat("distill nat: ", tokenizer_model,
                                                   " has no <mask> piece; pass --mask-id N"));
  return tok.mask_id();
}

absl::Status NatDistillOptions::Validate() const {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("distill nat: " + m); };
  if (target.empty()) return bad("--target: a target checkpoint directory is required");
  if (teacher.empty()) return bad("--teacher: a teacher store is required");
  if (init != "random" && init != "target") return bad(absl::StrCat("--init ", init, ": expected random or target"));
  if (!init_layers.empty() && init != "target") return bad("--init-layers needs --init target");
  if (gamma < 1) return bad(absl::StrCat("--gamma ", gamma, ": must be >= 1"));
  if (train.seq_len < gamma) return bad(absl::StrCat("--seq-len ", train.seq_len, ": must be >= --gamma ", gamma));
  if (groups_per_seq < 0) return bad(absl::StrCat("--groups-per-seq ", groups_per_seq, ": must be >= 0"));
  if (eval_sequences < 0) return bad(absl::StrCat("--eval-sequences ", eval_sequences, ": must be >= 0"));
  AUGUR_RETURN_IF_ERROR(ValidateQatScheme(qat, "distill nat"));
  return kd.Validate();
}

nlohmann::json NatDistillOptions::ToJson() const {
  return {{"name", "distill-nat"},        {"target", target},
          {"teacher", teacher},           {"student", student},
          {"init", init},                 {"init_layers", init_layers},
          {"gamma", gamma},               {"mask_id", mask_id},
          {"groups_per_seq", groups_per_seq},
          {"loss", KdLossName(kd.kind)},  {"temperature", kd.temperature},
          {"jsd_beta", kd.jsd_beta},      {"eval_sequences", eval_sequences}, {"qat", qat}};
}

absl::StatusOr<train::TrainResult> DistillNat(const NatDistillOptions& opts) {
  AUGUR_ASSIGN_OR_RETURN(Setup s, Prepare(opts));
  std::string init_checkpoint;
  AUGUR_ASSIGN_OR_RETURN(ModelConfig cfg, ResolveStudentConfig(opts.student, s.target.model->config(),
                                                               opts.init_layers, &init_checkpoint));
  AUGUR_RETURN_IF_ERROR(CheckStudentVocab(opts, s, cfg));
  train::TrainJob job;
  if (opts.train.resume) {
    // The objective's settings fix what a step means; a resumed run keeps them.
    auto text = ReadFile(opts.train.out_dir + "/train_config.json");
    if (text.ok()) {
      const auto saved = nlohmann::json::parse(*text, nullptr, false).value("objective", nlohmann::json());
      nlohmann::json now = opts.ToJson();
      now["mask_id"] = s.mask_id;
      for (const char* key : {"gamma", "mask_id", "groups_per_seq", "loss", "temperature", "jsd_beta", "eval_sequences", "qat"})
        if (saved.is_object() && saved.contains(key) && saved[key] != now[key])
          return absl::InvalidArgumentError(absl::StrCat("distill nat: --resume: ", opts.train.out_dir,
                                                         " was trained with ", key, "=", saved[key].dump(),
                                                         " but this run asks for ", now[key].dump()));
    }
  } else if (!init_checkpoint.empty()) {
    if (opts.init == "target")
      return absl::InvalidArgumentError(absl::StrCat("distill nat: --init target: --student ", opts.student,
                                                     " is a checkpoint, whose weights are the init"));
    AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ck, LoadCheckpoint(init_checkpoint, s.device, torch::kFloat32));
    job.init = ck.model;
  } else if (opts.init == "target") {
    AUGUR_ASSIGN_OR_RETURN(auto layers, ResolveInitLayers(opts.init_layers, cfg.num_hidden_layers,
                                                          s.target.model->config().num_hidden_layers));
    LlamaModel init(cfg);
    init->init_weights(opts.train.seed);
    init->to(s.device);
    AUGUR_RETURN_IF_ERROR(InitFromTarget(*init, *s.target.model, layers));
    job.init = init;
  }

  AUGUR_ASSIGN_OR_RETURN(NatTeacherData data, OpenData(opts, s));
  NatDistillOptions resolved = opts;
  resolved.mask_id = s.mask_id;
  NatDistillObjective objective(resolved, std::move(data), s.target.model);
  train::TrainData tdata;
  tdata.source = opts.teacher;
  tdata.data_fingerprint = TeacherStoreFingerprint(*s.store);
  tdata.tokenizer_fingerprint = !s.target.meta.tokenizer_fingerprint.empty() ? s.target.meta.tokenizer_fingerprint
                                                                             : s.store->info().tokenizer_fingerprint;
  tdata.tokenizer_model = s.target.tokenizer_model;
  tdata.vocab_size = s.store->info().vocab_size;
  job.objective = &objective;
  job.meta.kind = "nat-drafter";
  job.meta.gamma = opts.gamma;
  job.meta.mask_token_id = s.mask_id;
  job.meta.target_fingerprint = s.target_fingerprint;
  job.meta.command_line = opts.command_line;
  job.meta.extra["distill"] = resolved.ToJson();
  job.select_metric = "alpha";
  if (!opts.qat.empty()) {
    job.prepare = QatPrepare(opts.qat);
    job.meta.extra["qat"] = {{"scheme", opts.qat}};
  }
  train::TrainOptions topts = opts.train;
  topts.command_line = opts.command_line;
  return train::Train(cfg, tdata, topts, job);
}

absl::StatusOr<train::Metrics> EvaluateNat(const NatDistillOptions& opts) {
  AUGUR_ASSIGN_OR_RETURN(Setup s, Prepare(opts));
  if (opts.eval_sequences <= 0) return absl::InvalidArgumentError("distill nat: evaluation needs --eval-sequences > 0");
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint student, LoadAnyCheckpoint(opts.student, s.device));
  AUGUR_RETURN_IF_ERROR(CheckStudentVocab(opts, s, student.model->config()));
  AUGUR_ASSIGN_OR_RETURN(NatTeacherData data, OpenData(opts, s));
  NatDistillOptions resolved = opts;
  resolved.mask_id = s.mask_id;
  NatDistillObjective objective(resolved, std::move(data), s.target.model);
  student.model->eval();
  try {
    return objective.Validate(student.model);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("distill nat: ", e.what_without_backtrace()));
  }
}

}  // namespace augur::distill
