// augur distill ar: the distillation objective (off-policy / on-policy / mix) over the
// shared trainer, and the held-out acceptance figures. See ar_distill.h.
#include "distill/ar_distill.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <random>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/device.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/sampling.h"
#include "datasets/teacher_store.h"
#include "distill/distill_setup.h"
#include "distill/qat.h"
#include "runtime/qmodel.h"

namespace augur::distill {
namespace {

// SplitMix64: batch contents and policy choices are hashes of (seed, salt, index), so a
// resumed run draws exactly what the uninterrupted one would have.
uint64_t Mix(uint64_t x) { return SplitMix64(x); }
uint64_t Hash(uint64_t seed, uint64_t salt, uint64_t index) { return Mix(Mix(Mix(seed) ^ salt) ^ index); }
constexpr uint64_t kOffPolicySalt = 0x6f6666, kOnPolicySalt = 0x6f6e, kPolicySalt = 0x706f6c;

int64_t Below(std::mt19937_64& rng, int64_t n) { return n <= 1 ? 0 : static_cast<int64_t>(rng() % uint64_t(n)); }

// First row that counts as a continuation position: the distribution of token P is row P-1.
int64_t FirstContinuationRow(int64_t prompt_len) { return prompt_len > 0 ? prompt_len - 1 : 0; }

at::Tensor LongTensor(const std::vector<int64_t>& v, std::vector<int64_t> shape) {
  return torch::tensor(v, torch::kLong).reshape(shape);
}

class ArDistillObjective : public train::TrainObjective {
 public:
  ArDistillObjective(const ArDistillOptions& opts, std::shared_ptr<const TeacherStore> store, LlamaModel target)
      : opts_(opts), store_(std::move(store)), target_(std::move(target)) {
    num_train_ = store_->num_sequences() - opts_.eval_sequences;
  }

  bool OnPolicyStep(int64_t step) const {
    if (opts_.policy == Policy::kOff) return false;
    if (opts_.policy == Policy::kOn) return true;
    std::mt19937_64 rng(Hash(opts_.train.seed, kPolicySalt, static_cast<uint64_t>(step)));
    return static_cast<double>(rng() >> 11) * 0x1.0p-53 < opts_.lambda;
  }

  absl::StatusOr<at::Tensor> Loss(LlamaModel& model, int64_t step, int64_t micro) override {
    const int64_t index = step * opts_.train.grad_accum + micro;
    return OnPolicyStep(step) ? OnPolicyLoss(model, index) : OffPolicyLoss(model, index);
  }

  absl::StatusOr<train::Metrics> Validate(LlamaModel& model) override;
  int64_t TokensPerMicroBatch() const override { return opts_.train.batch * opts_.train.seq_len; }
  nlohmann::json Describe() const override { return opts_.ToJson(); }

 private:
  absl::StatusOr<at::Tensor> OffPolicyLoss(LlamaModel& model, int64_t index);
  absl::StatusOr<at::Tensor> OnPolicyLoss(LlamaModel& model, int64_t index);
  absl::Status PrepareValidation();

  const ArDistillOptions& opts_;
  std::shared_ptr<const TeacherStore> store_;
  LlamaModel target_;
  int64_t num_train_ = 0;
  // Held-out set, built once: padded token groups, the selected rows of each, and the
  // target's logits at all selected rows (the target is fixed).
  struct EvalGroup {
    at::Tensor ids;   // int64 [b, T']
    at::Tensor rows;  // int64 [n]: flat indices into [b * T']
  };
  std::vector<EvalGroup> eval_groups_;
  at::Tensor eval_target_logits_;  // [N, V]
};

// Windows of T tokens of training sequences; the loss at row i is the KD loss against the
// stored top-k distribution of token i+1. Sequences shorter than T are padded after
// their end (causal attention keeps the padding out of the real rows, which alone count).
absl::StatusOr<at::Tensor> ArDistillObjective::OffPolicyLoss(LlamaModel& model, int64_t index) {
  std::mt19937_64 rng(Hash(opts_.train.seed, kOffPolicySalt, static_cast<uint64_t>(index)));
  const int64_t B = opts_.train.batch, T = opts_.train.seq_len, K = store_->info().top_k;
  std::vector<int64_t> ids(B * T, 0), rows, topk_ids;
  std::vector<float> topk_logprobs, rest;
  for (int64_t b = 0; b < B; ++b) {
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store_->Read(Below(rng, num_train_)));
    const int64_t L = seq.length(), n = std::min(T, L);
    const int64_t hi = L - n;
    const int64_t lo = opts_.continuation_only ? std::min(FirstContinuationRow(seq.prompt_len), hi) : 0;
    const int64_t o = lo + Below(rng, hi - lo + 1);
    const int64_t first = opts_.continuation_only ? FirstContinuationRow(seq.prompt_len) : 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = o + i;
      ids[b * T + i] = seq.tokens[r];
      if (r < first) continue;
      rows.push_back(b * T + i);
      topk_ids.insert(topk_ids.end(), seq.topk_ids.begin() + r * K, seq.topk_ids.begin() + (r + 1) * K);
      topk_logprobs.insert(topk_logprobs.end(), seq.topk_logprobs.begin() + r * K,
                           seq.topk_logprobs.begin() + (r + 1) * K);
      rest.push_back(seq.rest_logmass[r]);
    }
  }
  const auto dev = model->device();
  at::Tensor logits = model->logits(LongTensor(ids, {B, T}).to(dev));  // [B, T, V]
  if (rows.empty()) return (logits.sum() * 0).to(torch::kFloat);  // no continuation in this batch
  const int64_t N = static_cast<int64_t>(rows.size());
  at::Tensor student = logits.reshape({B * T, -1}).index_select(0, LongTensor(rows, {N}).to(dev));
  at::Tensor t_ids = LongTensor(topk_ids, {N, K}).to(dev);
  at::Tensor t_lp = torch::tensor(topk_logprobs, torch::kFloat).reshape({N, K}).to(dev);
  at::Tensor t_rest = torch::tensor(rest, torch::kFloat).to(dev);
  return KdLossTopK(student, t_ids, t_lp, t_rest, opts_.kd).mean();
}

// The student continues B prompts to T tokens by sampling its own distribution (KV cache,
// temperature 1, a sampler seeded by the batch index); the target scores the result
// online and the loss covers the rows that predict generated tokens.
absl::StatusOr<at::Tensor> ArDistillObjective::OnPolicyLoss(LlamaModel& model, int64_t index) {
  std::mt19937_64 rng(Hash(opts_.train.seed, kOnPolicySalt, static_cast<uint64_t>(index)));
  const int64_t B = opts_.train.batch, T = opts_.train.seq_len;
  std::vector<TeacherSequence> seqs;
  int64_t P = T / 2;  // one prompt length per batch (the cache has one length for all rows)
  for (int64_t b = 0; b < B; ++b) {
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store_->Read(Below(rng, num_train_)));
    const int64_t p = seq.prompt_len > 0 ? seq.prompt_len : std::max<int64_t>(1, seq.length() / 4);
    P = std::min({P, p, seq.length()});
    seqs.push_back(std::move(seq));
  }
  P = std::max<int64_t>(P, 1);
  std::vector<int64_t> ids(B * T, 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < P; ++i) ids[b * T + i] = seqs[b].tokens[i];
  const auto dev = model->device();
  {
    torch::NoGradGuard no_grad;
    Sampler sampler(Hash(opts_.train.seed, kOnPolicySalt + 1, static_cast<uint64_t>(index)));
    KVCache cache = model->new_cache(B, T);
    ForwardOptions last;
    last.logits_last = 1;
    at::Tensor logits = model->forward(LongTensor(ids, {B, T}).narrow(1, 0, P).to(dev), &cache, last).logits;
    for (int64_t t = P; t < T; ++t) {
      at::Tensor probs = torch::softmax(logits.select(1, 0).to(torch::kFloat), -1).cpu();  // [B, V]
      std::vector<int64_t> next(B);
      for (int64_t b = 0; b < B; ++b) next[b] = ids[b * T + t] = sampler.SampleFromProbs(probs[b]);
      if (t + 1 < T) logits = model->forward(LongTensor(next, {B, 1}).to(dev), &cache, last).logits;
    }
  }
  at::Tensor seq = LongTensor(ids, {B, T}).to(dev);
  at::Tensor teacher;
  {
    torch::NoGradGuard no_grad;
    teacher = target_->logits(seq).narrow(1, P - 1, T - P + 1);
  }
  at::Tensor student = model->logits(seq).narrow(1, P - 1, T - P + 1);
  const int64_t V = student.size(-1);
  return KdLossFull(student.reshape({-1, V}), teacher.reshape({-1, V}), opts_.kd).mean();
}

absl::Status ArDistillObjective::PrepareValidation() {
  const int64_t B = opts_.train.batch, T = opts_.train.seq_len;
  const auto dev = target_->device();
  std::vector<at::Tensor> target_rows;
  for (int64_t s0 = num_train_; s0 < store_->num_sequences(); s0 += B) {
    const int64_t b_n = std::min(B, store_->num_sequences() - s0);
    std::vector<TeacherSequence> seqs;
    int64_t width = 1;
    for (int64_t b = 0; b < b_n; ++b) {
      AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store_->Read(s0 + b));
      width = std::max(width, std::min(T, seq.length()));
      seqs.push_back(std::move(seq));
    }
    std::vector<int64_t> ids(b_n * width, 0), rows;
    for (int64_t b = 0; b < b_n; ++b) {
      const int64_t L = seqs[b].length(), n = std::min(width, L);
      // Continuation rows: where a drafter drafts when the target generates (all rows of a
      // teacher-forced sequence). A prompt longer than the window (chat requests that quote
      // code) would leave none, so the window starts T/2 tokens before the continuation (or
      // ends at the sequence's end), keeping half a window of prompt as context.
      const int64_t first = FirstContinuationRow(seqs[b].prompt_len);
      const int64_t start = std::max<int64_t>(0, std::min(first - T / 2, L - n));
      for (int64_t i = 0; i < n; ++i) {
        ids[b * width + i] = seqs[b].tokens[start + i];
        if (start + i >= first) rows.push_back(b * width + i);
      }
    }
    if (rows.empty()) continue;
    EvalGroup g{LongTensor(ids, {b_n, width}).to(dev), LongTensor(rows, {(int64_t)rows.size()}).to(dev)};
    at::Tensor logits = target_->logits(g.ids);
    target_rows.push_back(logits.reshape({b_n * width, -1}).index_select(0, g.rows));
    eval_groups_.push_back(std::move(g));
  }
  if (eval_groups_.empty())
    return absl::InvalidArgumentError(absl::StrCat("distill ar: ", store_->path(),
                                                   ": the held-out sequences have no position to evaluate"));
  eval_target_logits_ = torch::cat(target_rows, 0);
  return absl::OkStatus();
}

absl::StatusOr<train::Metrics> ArDistillObjective::Validate(LlamaModel& model) {
  if (opts_.eval_sequences <= 0) return train::Metrics{};
  torch::NoGradGuard no_grad;
  if (eval_groups_.empty()) AUGUR_RETURN_IF_ERROR(PrepareValidation());
  std::vector<at::Tensor> student_rows;
  for (const auto& g : eval_groups_) {
    at::Tensor logits = model->logits(g.ids.to(model->device()));
    student_rows.push_back(logits.reshape({-1, logits.size(-1)}).index_select(0, g.rows.to(model->device())));
  }
  at::Tensor student = torch::cat(student_rows, 0).to(eval_target_logits_.device());
  const double loss = KdLossFull(student, eval_target_logits_, opts_.kd).mean().item<double>();
  const double alpha = ExpectedAcceptanceFull(student, eval_target_logits_).mean().item<double>();
  return train::Metrics{{"valid_loss", loss},
                        {"alpha", alpha},
                        {"valid_positions", static_cast<double>(student.size(0))}};
}

// Everything DistillAr and EvaluateAr share: the target, the store, and the checks that
// target, store and student agree.
using Setup = DistillSetup;

DistillSources Sources(const ArDistillOptions& opts) {
  return {"distill ar", opts.target, opts.teacher, opts.train.device, opts.train.seq_len};
}

absl::StatusOr<Setup> Prepare(const ArDistillOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.Validate());
  AUGUR_ASSIGN_OR_RETURN(Setup s, OpenTargetAndTeacher(Sources(opts)));
  const TeacherStoreInfo& info = s.store->info();
  if (opts.policy != Policy::kOff && info.temperature != 1.0)
    return absl::InvalidArgumentError(absl::StrCat(
        "distill ar: --policy ", PolicyName(opts.policy), ": --teacher ", opts.teacher,
        " holds log-probs at temperature ", info.temperature,
        " but on-policy steps score the target at temperature 1; use a store made with --store-temperature 1"));
  if (s.store->num_sequences() <= opts.eval_sequences)
    return absl::InvalidArgumentError(absl::StrCat("distill ar: --teacher ", opts.teacher, " has ",
                                                   s.store->num_sequences(), " sequences, not more than the ",
                                                   opts.eval_sequences, " held out by --eval-sequences"));
  return s;
}

absl::Status CheckStudent(const ArDistillOptions& opts, const Setup& s, const ModelConfig& student,
                          const std::string& student_tokenizer) {
  return CheckStudentVocab(Sources(opts), s, opts.student, student, student_tokenizer);
}

}  // namespace

absl::StatusOr<Policy> ParsePolicy(const std::string& name) {
  if (name == "off") return Policy::kOff;
  if (name == "on") return Policy::kOn;
  if (name == "mix") return Policy::kMix;
  return absl::InvalidArgumentError(absl::StrCat("distill ar: --policy ", name, ": expected off, on or mix"));
}

const char* PolicyName(Policy p) { return p == Policy::kOff ? "off" : p == Policy::kOn ? "on" : "mix"; }

absl::Status ArDistillOptions::Validate() const {
  auto bad = [](const std::string& m) { return absl::InvalidArgumentError("distill ar: " + m); };
  if (target.empty()) return bad("--target: a target checkpoint directory is required");
  if (teacher.empty()) return bad("--teacher: a teacher store is required");
  if (init != "random" && init != "target") return bad(absl::StrCat("--init ", init, ": expected random or target"));
  if (!init_layers.empty() && init != "target") return bad("--init-layers needs --init target");
  if (!(lambda >= 0 && lambda <= 1)) return bad(absl::StrCat("--lambda ", lambda, ": must be in [0, 1]"));
  if (eval_sequences < 0) return bad(absl::StrCat("--eval-sequences ", eval_sequences, ": must be >= 0"));
  if (train.seq_len < 2) return bad(absl::StrCat("--seq-len ", train.seq_len, ": must be >= 2"));
  AUGUR_RETURN_IF_ERROR(ValidateQatScheme(qat, "distill ar"));
  return kd.Validate();
}

nlohmann::json ArDistillOptions::ToJson() const {
  return {{"name", "distill-ar"},          {"target", target},
          {"teacher", teacher},            {"student", student},
          {"init", init},                  {"init_layers", init_layers},
          {"loss", KdLossName(kd.kind)},   {"temperature", kd.temperature},
          {"jsd_beta", kd.jsd_beta},       {"policy", PolicyName(policy)},
          {"lambda", lambda},              {"positions", continuation_only ? "continuation" : "all"},
          {"eval_sequences", eval_sequences}, {"qat", qat}};
}

absl::StatusOr<train::TrainResult> DistillAr(const ArDistillOptions& opts) {
  AUGUR_ASSIGN_OR_RETURN(Setup s, Prepare(opts));
  std::string init_checkpoint;
  AUGUR_ASSIGN_OR_RETURN(ModelConfig cfg, ResolveStudentConfig(opts.student, s.target.model->config(),
                                                               opts.init_layers, &init_checkpoint));
  if (opts.train.resume)
    AUGUR_RETURN_IF_ERROR(CheckResumedObjective(
        "distill ar", opts.train.out_dir, opts.ToJson(),
        {"loss", "temperature", "jsd_beta", "policy", "lambda", "positions", "eval_sequences", "qat"}));
  AUGUR_ASSIGN_OR_RETURN(StudentStart start, StartStudent(Sources(opts), s, opts.student, opts.init, init_checkpoint,
                                                          cfg, opts.init_layers, opts.train.resume, opts.train.seed));
  AUGUR_RETURN_IF_ERROR(CheckStudent(opts, s, cfg, start.tokenizer_fingerprint));

  ArDistillObjective objective(opts, s.store, s.target.model);
  const train::TrainData data = TeacherTrainData(opts.teacher, s);
  train::TrainJob job;
  job.init = start.init;
  job.objective = &objective;
  FillDrafterJob(kKindArDrafter, s, opts.command_line, opts.ToJson(), opts.qat, &job);
  train::TrainOptions topts = opts.train;
  topts.command_line = opts.command_line;
  return train::Train(cfg, data, topts, job);
}

absl::StatusOr<train::Metrics> EvaluateAr(const ArDistillOptions& opts) {
  AUGUR_ASSIGN_OR_RETURN(Setup s, Prepare(opts));
  if (opts.eval_sequences <= 0) return absl::InvalidArgumentError("distill ar: --eval-only needs --eval-sequences > 0");
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint student, LoadAnyCheckpoint(opts.student, s.device));
  AUGUR_RETURN_IF_ERROR(CheckStudent(opts, s, student.model->config(), student.meta.tokenizer_fingerprint));
  ArDistillObjective objective(opts, s.store, s.target.model);
  student.model->eval();
  train::Metrics m;
  try {
    AUGUR_ASSIGN_OR_RETURN(m, objective.Validate(student.model));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("distill ar: ", e.what_without_backtrace()));
  }
  if (!opts.train.out_dir.empty()) {
    AUGUR_RETURN_IF_ERROR(MakeDirs(opts.train.out_dir));
    JsonlLog log(opts.train.out_dir + "/metrics.jsonl", /*append=*/true);
    nlohmann::json event = {{"event", "eval"}, {"step", 0}, {"student", opts.student}, {"eval_only", true}};
    for (const auto& [k, v] : m) event[k] = v;
    log.write(event);
  }
  return m;
}

}  // namespace augur::distill
