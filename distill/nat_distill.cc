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
#include "distill/distill_setup.h"
#include "distill/qat.h"
#include "runtime/qmodel.h"
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
struct Setup : DistillSetup {
  int64_t mask_id = -1;
};

DistillSources Sources(const NatDistillOptions& opts) {
  return {"distill nat", opts.target, opts.teacher, opts.train.device, opts.train.seq_len};
}

absl::StatusOr<Setup> Prepare(const NatDistillOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.Validate());
  Setup s;
  AUGUR_ASSIGN_OR_RETURN(static_cast<DistillSetup&>(s), OpenTargetAndTeacher(Sources(opts)));
  const ModelConfig& tcfg = s.target.model->config();
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

}  // namespace

absl::StatusOr<int64_t> ResolveMaskId(int64_t given, const std::string& tokenizer_model, const std::string& target) {
  if (given >= 0) return given;
  if (tokenizer_model.empty())
    return absl::InvalidArgumentError(absl::StrCat("distill nat: --target ", target,
                                                   " has no tokenizer to take the mask id from; pass "
                                                   "--mask-id N (an id the target never produces)"));
  AUGUR_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::Load(tokenizer_model));
  if (tok.mask_id() >= 0) return tok.mask_id();
  // No <mask> piece (real vocabularies rarely have one): the drafter takes a reserved special
  // token that text never encodes to, the last one that is not BOS/EOS/PAD/UNK, and trains its
  // own embedding row for it. The target's vocabulary and embedding stay as they are.
  for (int32_t id = tok.vocab_size() - 1; id >= 0; --id) {
    if (!tok.IsControl(id) || id == tok.bos_id() || id == tok.eos_id() || id == tok.pad_id() || id == tok.unk_id())
      continue;
    return id;
  }
  return absl::InvalidArgumentError(absl::StrCat("distill nat: ", tokenizer_model,
                                                 " has no <mask> piece and no spare special token; pass --mask-id N"));
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
  if (opts.train.resume) {
    nlohmann::json now = opts.ToJson();
    now["mask_id"] = s.mask_id;
    AUGUR_RETURN_IF_ERROR(CheckResumedObjective(
        "distill nat", opts.train.out_dir, now,
        {"gamma", "mask_id", "groups_per_seq", "loss", "temperature", "jsd_beta", "eval_sequences", "qat"}));
  }
  AUGUR_ASSIGN_OR_RETURN(StudentStart start, StartStudent(Sources(opts), s, opts.student, opts.init, init_checkpoint,
                                                          cfg, opts.init_layers, opts.train.resume, opts.train.seed));
  AUGUR_RETURN_IF_ERROR(CheckStudentVocab(Sources(opts), s, opts.student, cfg, start.tokenizer_fingerprint));

  AUGUR_ASSIGN_OR_RETURN(NatTeacherData data, OpenData(opts, s));
  NatDistillOptions resolved = opts;
  resolved.mask_id = s.mask_id;
  NatDistillObjective objective(resolved, std::move(data), s.target.model);
  const train::TrainData tdata = TeacherTrainData(opts.teacher, s);
  train::TrainJob job;
  job.init = start.init;
  job.objective = &objective;
  FillDrafterJob(kKindNatDrafter, s, opts.command_line, resolved.ToJson(), opts.qat, &job);
  job.meta.gamma = opts.gamma;
  job.meta.mask_token_id = s.mask_id;
  if (auto tok = Tokenizer::Load(s.target.tokenizer_model); tok.ok() && tok->mask_id() != s.mask_id)
    job.meta.extra["mask_token"] = {{"id", s.mask_id},
                                    {"text", tok->IdToPiece(static_cast<int32_t>(s.mask_id))},
                                    {"how", "a reserved special token of the target vocabulary; the drafter trains its "
                                            "own embedding row for it (the target has no <mask>)"}};
  train::TrainOptions topts = opts.train;
  topts.command_line = opts.command_line;
  return train::Train(cfg, tdata, topts, job);
}

absl::StatusOr<train::Metrics> EvaluateNat(const NatDistillOptions& opts) {
  AUGUR_ASSIGN_OR_RETURN(Setup s, Prepare(opts));
  if (opts.eval_sequences <= 0) return absl::InvalidArgumentError("distill nat: evaluation needs --eval-sequences > 0");
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint student, LoadAnyCheckpoint(opts.student, s.device));
  AUGUR_RETURN_IF_ERROR(CheckStudentVocab(Sources(opts), s, opts.student, student.model->config()));
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
