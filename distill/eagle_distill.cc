#include "distill/eagle_distill.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/eagle_head.h"
#include "core/hash.h"
#include "core/sampling.h"
#include "distill/eagle_features.h"
#include "distill/distill_setup.h"
#include "eval/draft_vocab.h"

namespace augur::distill {
namespace {

constexpr char kCommand[] = "distill eagle";
constexpr uint64_t kWindowSalt = 0x6561676c65;  // "eagle"

uint64_t Hash(uint64_t seed, uint64_t salt, uint64_t index) {
  return SplitMix64(SplitMix64(SplitMix64(seed) ^ salt) ^ index);
}
int64_t Below(std::mt19937_64& rng, int64_t n) { return n <= 1 ? 0 : static_cast<int64_t>(rng() % uint64_t(n)); }
// The first row that predicts a continuation token: the distribution of token P is row P-1.
int64_t FirstContinuationRow(int64_t prompt_len) { return prompt_len > 0 ? prompt_len - 1 : 0; }

absl::Status Bad(const std::string& problem) { return absl::InvalidArgumentError(absl::StrCat(kCommand, ": ", problem)); }

// One batch of windows: tokens, which rows are labels (a real row at or after the first
// continuation row), and where each row's window lies in its teacher sequence.
struct Windows {
  at::Tensor ids;    // int64 [B, T]
  at::Tensor label;  // bool [B, T]
  struct Row {
    int64_t seq = 0, offset = 0, length = 0;
    std::vector<int32_t> prefix;  // the sequence's tokens [0, offset + length): the target's context
  };
  std::vector<Row> rows;
};

// What the target says about a batch, computed once per batch without gradients.
struct TargetPass {
  at::Tensor taps;    // [B, T, 3dt]: the three hidden states, concatenated
  at::Tensor p_draft; // [B, T, Nd]: the target's distribution on the draft vocabulary, renormalized
  at::Tensor p_full;  // [B, T, Nd]: the same probabilities, not renormalized (alpha)
  at::Tensor greedy;  // int64 [B, T]: the target's argmax over its whole vocabulary
};

// The loss / label of step k at anchor t sits at row t+1+k: shift a [B,T,...] tensor left by
// 1+k rows, padding with zeros (false).
at::Tensor ShiftLeft(const at::Tensor& x, int64_t by) {
  const int64_t T = x.size(1);
  at::Tensor out = at::zeros_like(x);
  if (by < T) out.narrow(1, 0, T - by).copy_(x.narrow(1, by, T - by));
  return out;
}

class EagleObjective : public train::TrainObjective {
 public:
  EagleObjective(const EagleDistillOptions& opts, std::shared_ptr<const TeacherStore> store, LlamaModel target,
                 EagleHead head)
      : opts_(opts), store_(std::move(store)), target_(std::move(target)), head_(std::move(head)) {
    num_train_ = store_->num_sequences() - opts_.eval_sequences;
  }
  // The cache keeps target ids; t2d_ maps them to draft indices (Nd: outside the draft vocabulary).
  void set_cache(std::unique_ptr<FeatureCache> cache) {
    cache_ = std::move(cache);
    const at::Tensor ids = head_->draft_ids().to(torch::kCPU);
    const int64_t Nd = ids.size(0);
    t2d_ = at::full({target_->config().vocab_size}, Nd, torch::kInt64);
    t2d_.index_put_({ids}, at::arange(Nd, torch::kInt64));
  }

  absl::StatusOr<at::Tensor> Loss(LlamaModel&, int64_t step, int64_t micro) override {
    AUGUR_ASSIGN_OR_RETURN(Windows w, TrainWindows(step * opts_.train.grad_accum + micro));
    AUGUR_ASSIGN_OR_RETURN(const TargetPass tp, Target(w));
    const std::vector<at::Tensor> logits = head_->Unroll(w.ids, tp.taps, opts_.ttt_steps);
    return StepLosses(logits, tp, w.label).first;
  }

  absl::StatusOr<train::Metrics> Validate(LlamaModel&) override;
  int64_t TokensPerMicroBatch() const override { return opts_.train.batch * opts_.train.seq_len; }
  nlohmann::json Describe() const override { return opts_.ToJson(); }

 private:
  absl::StatusOr<Windows> TrainWindows(int64_t index) const;
  // The target's rows of each window: its taps and next-token distribution, with the window's
  // whole sequence prefix as context (online, or from the feature cache).
  absl::StatusOr<TargetPass> Target(const Windows& w);
  TargetPass TargetOnline(const Windows& w);
  absl::StatusOr<TargetPass> TargetCached(const Windows& w) const;
  // The weighted loss (with grad) and each step's mean cross-entropy.
  std::pair<at::Tensor, std::vector<double>> StepLosses(const std::vector<at::Tensor>& logits, const TargetPass& tp,
                                                        const at::Tensor& label) const;

  const EagleDistillOptions& opts_;
  std::shared_ptr<const TeacherStore> store_;
  LlamaModel target_;
  EagleHead head_;
  std::unique_ptr<FeatureCache> cache_;
  at::Tensor t2d_;  // int64 [V]: target id -> draft index (Nd outside), for the cache
  int64_t num_train_ = 0;
  struct EvalGroup {
    Windows w;
    TargetPass tp;
  };
  std::vector<EvalGroup> eval_;
};

// Windows of T tokens: a random offset into a random training sequence, the window starting
// no later than the first continuation row when the sequence allows (so it has labels).
absl::StatusOr<Windows> EagleObjective::TrainWindows(int64_t index) const {
  std::mt19937_64 rng(Hash(opts_.train.seed, kWindowSalt, static_cast<uint64_t>(index)));
  const int64_t B = opts_.train.batch, T = opts_.train.seq_len;
  std::vector<int64_t> ids(B * T, 0);
  std::vector<uint8_t> label(B * T, 0);
  Windows w;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t s = Below(rng, num_train_);
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store_->Read(s));
    const int64_t L = seq.length(), n = std::min(T, L), first = FirstContinuationRow(seq.prompt_len);
    const int64_t hi = L - n, lo = std::min(std::max<int64_t>(0, first - T / 2), hi);
    const int64_t o = lo + Below(rng, hi - lo + 1);
    for (int64_t i = 0; i < n; ++i) {
      ids[b * T + i] = seq.tokens[o + i];
      label[b * T + i] = o + i >= first;
    }
    w.rows.push_back({s, o, n, std::vector<int32_t>(seq.tokens.begin(), seq.tokens.begin() + o + n)});
  }
  const auto dev = head_->device();
  w.ids = torch::tensor(ids, torch::kInt64).reshape({B, T}).to(dev);
  w.label = torch::tensor(std::vector<int64_t>(label.begin(), label.end()), torch::kInt64).reshape({B, T}).ne(0).to(dev);
  return w;
}

absl::StatusOr<TargetPass> EagleObjective::Target(const Windows& w) {
  if (cache_ != nullptr) return TargetCached(w);
  return TargetOnline(w);
}

// One forward over the batch of prefixes (right-padded: a causal model's rows before the
// padding do not see it), then each window's rows; logits only for those rows.
TargetPass EagleObjective::TargetOnline(const Windows& w) {
  torch::NoGradGuard no_grad;
  const int64_t B = w.ids.size(0), T = w.ids.size(1);
  int64_t P = 1;
  for (const auto& r : w.rows) P = std::max<int64_t>(P, static_cast<int64_t>(r.prefix.size()));
  std::vector<int64_t> prefix(B * P, 0);
  for (int64_t b = 0; b < B; ++b) std::copy(w.rows[b].prefix.begin(), w.rows[b].prefix.end(), prefix.begin() + b * P);
  ForwardOptions fo;
  fo.hidden_layers = head_->config().target_layers;
  fo.hidden_layers.push_back(target_->config().num_hidden_layers);  // after the final norm
  fo.logits_last = 1;
  ForwardOutput out = target_->forward(torch::tensor(prefix, torch::kInt64).reshape({B, P}).to(target_->device()),
                                       nullptr, fo);
  const at::Tensor final_h = out.hidden.back();
  out.hidden.pop_back();
  const at::Tensor taps_full = at::cat(out.hidden, -1);
  const at::Tensor out_w = target_->config().tie_word_embeddings ? target_->model->embed_tokens->weight
                                                                 : target_->lm_head->weight;
  const auto dev = head_->device();
  at::Tensor taps = at::zeros({B, T, taps_full.size(-1)}, torch::TensorOptions(torch::kFloat32).device(dev));
  at::Tensor logits = at::zeros({B, T, out_w.size(0)}, torch::TensorOptions(torch::kFloat32).device(dev));
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = w.rows[b];
    if (r.length == 0) continue;
    taps[b].narrow(0, 0, r.length).copy_(taps_full[b].narrow(0, r.offset, r.length));
    logits[b].narrow(0, 0, r.length).copy_(at::matmul(final_h[b].narrow(0, r.offset, r.length), out_w.t()));
  }
  TargetPass tp;
  tp.taps = taps;
  tp.greedy = logits.argmax(-1);
  const at::Tensor d = logits.index_select(-1, head_->draft_ids());
  tp.p_draft = at::softmax(d, -1);
  tp.p_full = at::exp(d - at::logsumexp(logits, -1, /*keepdim=*/true));
  return tp;
}

// The cache keeps the target's top k: the label is that mass restricted to the draft
// vocabulary (p_full, an underestimate of the full restriction by at most the mass outside
// the top k) and renormalized (p_draft).
absl::StatusOr<TargetPass> EagleObjective::TargetCached(const Windows& w) const {
  const int64_t B = w.ids.size(0), T = w.ids.size(1), Nd = head_->draft_ids().size(0);
  at::Tensor taps, p_full = at::zeros({B, T, Nd + 1}), greedy = at::zeros({B, T}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = w.rows[b];
    AUGUR_ASSIGN_OR_RETURN(FeatureRows f, cache_->Read(r.seq, r.offset, r.length));
    if (!taps.defined()) taps = at::zeros({B, T, f.taps.size(-1)});
    if (r.length == 0) continue;
    taps[b].narrow(0, 0, r.length).copy_(f.taps);
    greedy[b].narrow(0, 0, r.length).copy_(f.greedy);
    p_full[b].narrow(0, 0, r.length).scatter_add_(-1, t2d_.index({f.topk_ids}), at::exp(f.topk_logp));
  }
  TargetPass tp;
  const auto dev = head_->device();
  tp.taps = taps.to(dev);
  tp.greedy = greedy.to(dev);
  tp.p_full = p_full.narrow(-1, 0, Nd).contiguous().to(dev);
  tp.p_draft = tp.p_full / at::clamp_min(tp.p_full.sum(-1, /*keepdim=*/true), 1e-12);
  return tp;
}

std::pair<at::Tensor, std::vector<double>> EagleObjective::StepLosses(const std::vector<at::Tensor>& logits,
                                                                      const TargetPass& tp,
                                                                      const at::Tensor& label) const {
  at::Tensor total = at::zeros({}, logits[0].options());
  double weights = 0, w = 1;
  std::vector<double> per_step;
  for (size_t k = 0; k < logits.size(); ++k, w *= opts_.step_decay) {
    const at::Tensor p = ShiftLeft(tp.p_draft, 1 + k);          // [B,T,Nd]
    const at::Tensor m = ShiftLeft(label, 1 + k).to(torch::kFloat);  // [B,T]
    const at::Tensor ce = -(p * at::log_softmax(logits[k], -1)).sum(-1);  // [B,T]
    const at::Tensor n = m.sum();
    const at::Tensor mean = (ce * m).sum() / at::clamp_min(n, 1.0);
    total = total + w * mean;
    weights += w;
    per_step.push_back(mean.item<double>());
  }
  return {total / weights, per_step};
}

absl::StatusOr<train::Metrics> EagleObjective::Validate(LlamaModel&) {
  if (opts_.eval_sequences <= 0) return train::Metrics{};
  torch::NoGradGuard no_grad;
  const int64_t B = opts_.train.batch, T = opts_.train.seq_len, K = opts_.ttt_steps;
  if (eval_.empty()) {
    for (int64_t s0 = num_train_; s0 < store_->num_sequences(); s0 += B) {
      const int64_t nb = std::min(B, store_->num_sequences() - s0);
      std::vector<int64_t> ids(nb * T, 0), label(nb * T, 0);
      Windows w;
      for (int64_t b = 0; b < nb; ++b) {
        AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store_->Read(s0 + b));
        const int64_t L = seq.length(), n = std::min(T, L), first = FirstContinuationRow(seq.prompt_len);
        const int64_t start = std::max<int64_t>(0, std::min(first - T / 2, L - n));
        for (int64_t i = 0; i < n; ++i) {
          ids[b * T + i] = seq.tokens[start + i];
          label[b * T + i] = start + i >= first;
        }
        w.rows.push_back({s0 + b, start, n, std::vector<int32_t>(seq.tokens.begin(), seq.tokens.begin() + start + n)});
      }
      w.ids = torch::tensor(ids, torch::kInt64).reshape({nb, T}).to(head_->device());
      w.label = torch::tensor(label, torch::kInt64).reshape({nb, T}).ne(0).to(head_->device());
      AUGUR_ASSIGN_OR_RETURN(TargetPass tp, Target(w));
      eval_.push_back({std::move(w), std::move(tp)});
    }
  }
  std::vector<double> agree(K, 0), counted(K, 0);
  double loss = 0, alpha = 0, alpha_n = 0, runs = 0, anchors = 0, groups = 0;
  for (const EvalGroup& g : eval_) {
    const std::vector<at::Tensor> logits = head_->Unroll(g.w.ids, g.tp.taps, K);
    loss += StepLosses(logits, g.tp, g.w.label).first.item<double>();
    ++groups;
    // An anchor counts for tau when all K steps have labels (the window holds K more tokens).
    const at::Tensor full = ShiftLeft(g.w.label, K);
    at::Tensor run = at::zeros(g.w.label.sizes(), torch::kInt64).to(head_->device());
    at::Tensor alive = full.clone();
    for (int64_t k = 0; k < K; ++k) {
      const at::Tensor m = ShiftLeft(g.w.label, 1 + k);
      const at::Tensor guess = head_->draft_ids().index({logits[k].argmax(-1)});  // [B,T] target ids
      const at::Tensor hit = guess.eq(ShiftLeft(g.tp.greedy, 1 + k)) & m;
      agree[k] += hit.sum().item<double>();
      counted[k] += m.sum().item<double>();
      alive = alive & hit;
      run += alive.to(torch::kInt64);
      if (k == 0) {
        const at::Tensor q = at::softmax(logits[0], -1);
        const at::Tensor a = at::minimum(q, ShiftLeft(g.tp.p_full, 1)).sum(-1);
        alpha += (a * m.to(torch::kFloat)).sum().item<double>();
        alpha_n += m.sum().item<double>();
      }
    }
    runs += (run.to(torch::kFloat) * full.to(torch::kFloat)).sum().item<double>();
    anchors += full.sum().item<double>();
  }
  if (counted[0] == 0) return Bad(absl::StrCat(store_->path(), ": the held-out sequences have no position to evaluate"));
  train::Metrics m = {{"valid_loss", loss / std::max(1.0, groups)},
                      {"tau", 1.0 + (anchors > 0 ? runs / anchors : 0.0)},
                      {"alpha", alpha_n > 0 ? alpha / alpha_n : 0.0}};
  for (int64_t k = 0; k < K; ++k) m.push_back({absl::StrCat("acc_", k), counted[k] > 0 ? agree[k] / counted[k] : 0.0});
  m.push_back({"valid_positions", counted[0]});
  return m;
}

// The head's starting weights: lm_head = the target's output rows of the draft vocabulary,
// norm = the target's final norm (the head then starts as the target's own readout), the rest
// random from the seed.
void InitHeadFromTarget(EagleHeadImpl& head, LlamaModelImpl& target) {
  torch::NoGradGuard no_grad;
  const at::Tensor out_w = target.config().tie_word_embeddings ? target.model->embed_tokens->weight
                                                               : target.lm_head->weight;
  head.lm_head->weight.copy_(out_w.index_select(0, head.draft_ids().to(out_w.device())).to(head.device()));
  head.norm->weight.copy_(target.model->norm->weight.to(head.device()));
}

}  // namespace

absl::Status EagleDistillOptions::Validate() const {
  if (target.empty()) return Bad("--target: a target checkpoint directory is required");
  if (teacher.empty()) return Bad("--teacher: a teacher store is required");
  if (!layers.empty() && layers.size() != 3)
    return Bad(absl::StrCat("--layers: needs 3 target layers (low, middle, high), got ", layers.size()));
  if (draft_vocab < 0) return Bad(absl::StrCat("--draft-vocab ", draft_vocab, ": must be >= 0"));
  if (ttt_steps < 1 || ttt_steps > 16) return Bad(absl::StrCat("--ttt-steps ", ttt_steps, ": must be in [1, 16]"));
  if (!(step_decay > 0 && step_decay <= 1)) return Bad(absl::StrCat("--step-decay ", step_decay, ": must be in (0, 1]"));
  if (eval_sequences < 0) return Bad(absl::StrCat("--eval-sequences ", eval_sequences, ": must be >= 0"));
  if (!cache_features.empty() && (cache_topk < 1 || cache_topk > 4096))
    return Bad(absl::StrCat("--cache-topk ", cache_topk, ": must be in [1, 4096]"));
  if (train.seq_len < ttt_steps + 2)
    return Bad(absl::StrCat("--seq-len ", train.seq_len, ": must be at least --ttt-steps + 2 = ", ttt_steps + 2));
  return absl::OkStatus();
}

nlohmann::json EagleDistillOptions::ToJson() const {
  return {{"name", "distill-eagle"}, {"target", target},       {"teacher", teacher},
          {"layers", layers},        {"draft_vocab", draft_vocab}, {"ttt_steps", ttt_steps},
          {"step_decay", step_decay}, {"eval_sequences", eval_sequences}, {"loss", "fkl-draft-vocab"},
          {"features", cache_features.empty() ? std::string("online") : absl::StrCat("cache-top", cache_topk)},
          {"cache_features", cache_features}, {"cache_topk", cache_topk}};
}

absl::StatusOr<train::TrainResult> DistillEagle(const EagleDistillOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.Validate());
  AUGUR_ASSIGN_OR_RETURN(DistillSetup s, OpenTargetAndTeacher({kCommand, opts.target, opts.teacher, opts.train.device,
                                                               opts.train.seq_len}));
  if (s.store->num_sequences() <= opts.eval_sequences)
    return Bad(absl::StrCat("--teacher ", opts.teacher, " has ", s.store->num_sequences(),
                            " sequences, not more than the ", opts.eval_sequences, " held out by --eval-sequences"));
  if (opts.train.resume)
    AUGUR_RETURN_IF_ERROR(CheckResumedObjective(kCommand, opts.train.out_dir, opts.ToJson(),
                                                {"layers", "draft_vocab", "ttt_steps", "step_decay", "eval_sequences", "features"}));
  const ModelConfig& tcfg = s.target.model->config();
  const int64_t vocab = tcfg.vocab_size;
  const int64_t nd = opts.draft_vocab == 0 ? vocab : std::min(opts.draft_vocab, vocab);
  AUGUR_ASSIGN_OR_RETURN(EagleConfig cfg, EagleConfig::ForTarget(tcfg, opts.layers, nd));
  // The draft vocabulary: the nd most frequent continuation tokens, in ascending id order.
  AUGUR_ASSIGN_OR_RETURN(std::vector<int64_t> counts, CountTeacherTokens(*s.store, vocab));
  std::vector<int64_t> ids = RankByCount(counts);
  ids.resize(nd);
  std::sort(ids.begin(), ids.end());

  torch::manual_seed(opts.train.seed);
  EagleHead head(cfg);
  head->init_weights(opts.train.seed);
  head->set_draft_ids(torch::tensor(ids, torch::kInt64));
  head->to(s.device);
  head->set_embedding(s.target.model->model->embed_tokens->weight.detach().to(s.device, torch::kFloat32));
  InitHeadFromTarget(*head, *s.target.model);

  EagleObjective objective(opts, s.store, s.target.model, head);
  if (!opts.cache_features.empty()) {
    FeatureCacheKey key;
    key.target_fingerprint = s.target_fingerprint;
    AUGUR_ASSIGN_OR_RETURN(key.teacher_hash, TeacherTokensHash(*s.store));
    key.layers = cfg.target_layers;
    key.hidden = tcfg.hidden_size;
    key.vocab = vocab;
    key.top_k = opts.cache_topk;
    AUGUR_ASSIGN_OR_RETURN(auto cache, FeatureCache::OpenOrBuild(opts.cache_features, key, *s.store, *s.target.model,
                                                                 opts.train.progress));
    objective.set_cache(std::move(cache));
  }
  const train::TrainData data = TeacherTrainData(opts.teacher, s);
  train::TrainJob job;
  job.objective = &objective;
  FillDrafterJob(kKindEagleDrafter, s, opts.command_line, opts.ToJson(), "", &job);
  job.meta.tokenizer_fingerprint = data.tokenizer_fingerprint;
  job.meta.extra["eagle"] = {{"target_layers", cfg.target_layers}, {"target_hidden_size", cfg.target_hidden_size},
                             {"target_num_layers", cfg.target_num_layers}, {"target_vocab_size", cfg.vocab_size}};
  job.select_metric = "tau";
  job.custom.module = head.ptr();
  job.custom.parameters = 0;
  for (const auto& p : head->parameters()) job.custom.parameters += p.numel();
  job.custom.config = cfg.ToJson();
  job.custom.save = [head](const std::string& dir, const AugurMeta& meta) mutable {
    return SaveEagleHead(*head, meta, dir);
  };
  job.custom.load = [head](const std::string& dir) mutable -> absl::Status {
    AUGUR_ASSIGN_OR_RETURN(LoadedEagle saved, LoadEagleHead(dir, head->device()));
    if (saved.head->config().ToJson() != head->config().ToJson())
      return Bad(absl::StrCat("--resume: the drafter in ", dir, " has another shape than this run asks for"));
    torch::NoGradGuard no_grad;
    const auto src = saved.head->named_parameters();
    for (auto& p : head->named_parameters()) p.value().copy_(src[p.key()]);
    head->set_draft_ids(saved.head->draft_ids());
    return absl::OkStatus();
  };
  train::TrainOptions topts = opts.train;
  topts.command_line = opts.command_line;
  try {
    return train::Train(tcfg, data, topts, job);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(kCommand, ": ", e.what_without_backtrace()));
  }
}

}  // namespace augur::distill
