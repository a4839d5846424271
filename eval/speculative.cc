#include "eval/speculative.h"

#include <torch/torch.h>

#include <chrono>
#include <algorithm>
#include <cmath>

#include "eval/token_tree.h"
#include "eval/verify.h"

namespace augur {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The state both entry points share: target cache, context, output, statistics, the
// adaptive-gamma estimate and the near-tie policy.
struct Engine {
  Engine(DecodeModel& target, const SpecOptions& opts, int64_t extra_capacity)
      : target_(target), opts_(opts), extra_(extra_capacity), sampler_(opts.seed) {}

  absl::Status Start(const std::vector<int64_t>& prompt, const std::vector<Drafter*>& drafters) {
    AUGUR_RETURN_IF_ERROR(opts_.sampling.Validate());
    const ModelConfig& cfg = target_.config();
    if (prompt.empty()) return absl::InvalidArgumentError("speculative: prompt: empty (give at least one token)");
    if (opts_.gamma < 0)
      return absl::InvalidArgumentError(absl::StrCat("speculative: --gamma ", opts_.gamma, ": must be >= 0"));
    for (int64_t id : prompt)
      if (id < 0 || id >= cfg.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat("speculative: prompt: token id ", id,
                                                       " is outside the vocabulary [0, ", cfg.vocab_size, ")"));
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    const int64_t capacity = n_prompt + opts_.max_new + extra_ + 1;
    if (capacity > cfg.max_position_embeddings)
      return absl::InvalidArgumentError(absl::StrCat("speculative: prompt (", n_prompt, " tokens) + max_new ",
                                                     opts_.max_new, " + gamma exceeds max_position_embeddings ",
                                                     cfg.max_position_embeddings));
    if (capacity > target_.capacity())
      return absl::InvalidArgumentError(absl::StrCat("speculative: prompt (", n_prompt, " tokens) + max_new ",
                                                     opts_.max_new, " + gamma needs ", capacity,
                                                     " cache entries; the target's cache holds ", target_.capacity()));
    eos_ = opts_.eos_id == -2 ? cfg.eos_token_id : opts_.eos_id;
    for (Drafter* d : drafters) AUGUR_RETURN_IF_ERROR(d->Begin(prompt));
    AUGUR_RETURN_IF_ERROR(PlanTaps(drafters));
    SpecStats& st = out_.stats;
    st.offered_at.assign(std::max<int64_t>(opts_.gamma, 1), 0);
    st.accepted_at.assign(std::max<int64_t>(opts_.gamma, 1), 0);
    st.drafter_accepted.assign(drafters.size(), 0);
    alpha_trials_ = 2.0;  // the prior weighs as two trials
    alpha_successes_ = 2.0 * opts_.adaptive_alpha0;
    t_start_ = Clock::now();
    // Invariant: the target cache holds every context token except the last ("pending"),
    // whose logits the next verification forward computes along with the draft's.
    target_.reset();
    context_ = prompt;
    if (n_prompt > 1) {
      DecodeOptions fo = TargetOptions();
      fo.logits_last = 1;
      fo.prefill = true;
      target_.forward(absl::MakeConstSpan(prompt.data(), prompt.size() - 1), fo);
    }
    std::vector<int64_t> rows(std::max<int64_t>(n_prompt - 1, 0));
    for (int64_t i = 0; i < n_prompt - 1; ++i) rows[i] = i;
    KeepFeatures(rows, 0);
    st.prefill_s = Since(t_start_);
    return absl::OkStatus();
  }

  // The union of the drafters' target layers, and where each drafter's come from in it.
  absl::Status PlanTaps(const std::vector<Drafter*>& drafters) {
    const int64_t n_layers = target_.config().num_hidden_layers;
    taps_.clear();
    tap_of_.assign(drafters.size(), {});
    features_.assign(drafters.size(), {});
    for (size_t d = 0; d < drafters.size(); ++d)
      for (int64_t layer : drafters[d]->target_layers()) {
        if (layer < 0 || layer > n_layers)
          return absl::InvalidArgumentError(absl::StrCat("speculative: drafter ", drafters[d]->name(), " reads target layer ",
                                                         layer, "; the target has layers 0..", n_layers));
        const auto it = std::find(taps_.begin(), taps_.end(), layer);
        tap_of_[d].push_back(static_cast<size_t>(it - taps_.begin()));
        if (it == taps_.end()) taps_.push_back(layer);
      }
    return absl::OkStatus();
  }

  // A target forward's options: logits of every row, and the taps the drafters read.
  DecodeOptions TargetOptions() const {
    DecodeOptions fo;
    fo.logits_last = 0;
    fo.hidden_layers = taps_;
    return fo;
  }

  // After a target forward: the hidden states of its rows `rows` (the tokens it kept), which
  // are context_[begin, begin + rows.size()), become each drafter's next features.
  void KeepFeatures(const std::vector<int64_t>& rows, int64_t begin) {
    if (taps_.empty()) return;
    const int64_t n = static_cast<int64_t>(rows.size());
    std::vector<at::Tensor> kept(taps_.size());
    for (size_t j = 0; j < taps_.size(); ++j) {
      if (n == 0) {
        kept[j] = at::empty({0, target_.config().hidden_size}, at::kFloat);
        continue;
      }
      const at::Tensor all = target_.hidden(j);  // [N, C], valid until the next forward
      kept[j] = all.index_select(0, at::tensor(rows, at::kLong)).contiguous();
    }
    for (size_t d = 0; d < features_.size(); ++d) {
      features_[d].begin = begin;
      features_[d].layers.clear();
      for (size_t j : tap_of_[d]) features_[d].layers.push_back(kept[j]);
    }
  }

  DraftRequest Request(size_t d, int64_t gamma) {
    return DraftRequest{context_, gamma, opts_.sampling, sampler_, tap_of_[d].empty() ? nullptr : &features_[d]};
  }

  bool Done() const { return static_cast<int64_t>(out_.tokens.size()) >= opts_.max_new || out_.hit_eos; }

  // This step's gamma: fixed, or the adaptive rule (speculative.h), never more than the
  // tokens still wanted minus the target's own.
  int64_t NextGamma() {
    const int64_t remaining = opts_.max_new - static_cast<int64_t>(out_.tokens.size());
    int64_t gamma = opts_.gamma;
    if (opts_.adaptive_gamma && gamma > 1) {
      const SpecStats& st = out_.stats;
      const double verify_per_forward = st.target_forwards > 0 ? st.verify_s / st.target_forwards : 0.0;
      const double c = drafted_ > 0 && verify_per_forward > 0 ? (st.draft_s / drafted_) / verify_per_forward : 0.0;
      gamma = ChooseGamma(alpha_successes_ / alpha_trials_, c, opts_.gamma);
    }
    gamma = std::min(gamma, remaining - 1);
    out_.stats.gamma_used.push_back(gamma);
    return gamma;
  }

  // Updates the acceptance estimate after a step that offered `offered` positions.
  void Observe(int64_t offered, int64_t accepted, int64_t gamma) {
    drafted_ += gamma;
    if (offered == 0) return;
    const double trials = static_cast<double>(accepted + (accepted < offered ? 1 : 0));
    alpha_successes_ = opts_.adaptive_decay * alpha_successes_ + accepted;
    alpha_trials_ = opts_.adaptive_decay * alpha_trials_ + trials;
  }

  // The target's greedy token at a position whose fast logits are `row` [V] (CPU), the
  // context there being context_ + `extra`: near-tie policy of speculative.h.
  int64_t DecideGreedy(const float* row, int64_t vocab, const std::vector<int64_t>& extra) {
    int64_t best = 0;
    for (int64_t t = 1; t < vocab; ++t)
      if (row[t] > row[best]) best = t;
    if (opts_.near_tie_eps <= 0 || target_.rows_exact()) return best;
    float second = -INFINITY;
    for (int64_t t = 0; t < vocab; ++t)
      if (t != best) second = std::max(second, row[t]);
    if (row[best] - second >= opts_.near_tie_eps) return best;
    const auto t0 = Clock::now();
    std::vector<int64_t> full = context_;
    full.insert(full.end(), extra.begin(), extra.end());
    const int64_t canonical = GreedyTokens(target_.canonical_logits(full)).item<int64_t>();
    ++out_.stats.near_ties;
    if (canonical != best) ++out_.stats.near_tie_flips;
    out_.stats.near_tie_s += Since(t0);
    return canonical;
  }

  // Appends accepted tokens then the target's own, stopping at EOS or max_new; returns what
  // it appended.
  std::vector<int64_t> Commit(const std::vector<int64_t>& fresh) {
    std::vector<int64_t> appended;
    for (int64_t tok : fresh) {
      if (static_cast<int64_t>(out_.tokens.size()) >= opts_.max_new) break;
      if (tok == eos_) {
        out_.hit_eos = true;
        break;
      }
      out_.tokens.push_back(tok);
      context_.push_back(tok);
      appended.push_back(tok);
    }
    return appended;
  }

  SpecResult Finish() {
    out_.stats.total_s = Since(t_start_);
    return std::move(out_);
  }

  DecodeModel& target_;
  const SpecOptions& opts_;
  int64_t extra_;
  Sampler sampler_;
  std::vector<int64_t> context_;
  SpecResult out_;
  int64_t eos_ = -1;
  Clock::time_point t_start_;
  double alpha_successes_ = 0, alpha_trials_ = 0;
  int64_t drafted_ = 0;
  std::vector<int64_t> taps_;               // target layers any drafter reads
  std::vector<std::vector<size_t>> tap_of_;  // per drafter: its layers' indices in taps_
  std::vector<TargetFeatures> features_;    // per drafter: the rows its next request carries
};

// A LibTorch target wrapped for one call (the module is shared, not copied).
std::unique_ptr<DecodeModel> TorchTarget(LlamaModelImpl& target, size_t prompt, const SpecOptions& opts) {
  auto self = std::dynamic_pointer_cast<LlamaModelImpl>(target.shared_from_this());
  AUGUR_CHECK(self != nullptr, "speculative: the target is not a LlamaModel");
  const int64_t capacity = std::min(SpecCapacity(static_cast<int64_t>(prompt), opts),
                                    std::max<int64_t>(target.config().max_position_embeddings, 1));
  return std::make_unique<TorchDecodeModel>(LlamaModel(self), capacity);
}

}  // namespace

int64_t SpecCapacity(int64_t longest, const SpecOptions& opts) {
  return longest + opts.max_new + std::max(opts.gamma, opts.tree_max_nodes) + 1;
}

absl::StatusOr<SpecResult> SpeculativeGenerate(LlamaModelImpl& target, Drafter& drafter,
                                               const std::vector<int64_t>& prompt, const SpecOptions& opts) {
  const auto model = TorchTarget(target, prompt.size(), opts);
  return SpeculativeGenerate(*model, drafter, prompt, opts);
}

absl::StatusOr<SpecResult> SpeculativeGenerateTree(LlamaModelImpl& target, const std::vector<Drafter*>& drafters,
                                                   const std::vector<int64_t>& prompt, const SpecOptions& opts) {
  const auto model = TorchTarget(target, prompt.size(), opts);
  return SpeculativeGenerateTree(*model, drafters, prompt, opts);
}

int64_t ChooseGamma(double alpha, double cost_ratio, int64_t gamma_max) {
  const double a = std::min(std::max(alpha, 0.0), 0.999);
  int64_t best = 1;
  double best_value = -1;
  for (int64_t g = 1; g <= gamma_max; ++g) {
    // expected tokens per step (accepted run + the target's own) per unit of cost
    const double value = (1 - std::pow(a, g + 1)) / (1 - a) / (cost_ratio * g + 1);
    if (value > best_value * (1 + 1e-12)) best_value = value, best = g;
  }
  return best;
}

absl::StatusOr<SpecResult> SpeculativeGenerate(DecodeModel& target, Drafter& drafter,
                                               const std::vector<int64_t>& prompt, const SpecOptions& opts) {
  torch::NoGradGuard no_grad;
  Engine e(target, opts, opts.gamma);
  AUGUR_RETURN_IF_ERROR(e.Start(prompt, {&drafter}));
  SpecStats& st = e.out_.stats;
  while (!e.Done()) {
    const int64_t gamma = e.NextGamma();
    auto t0 = Clock::now();
    Draft draft = gamma > 0 ? drafter.Propose(e.Request(0, gamma)) : Draft{};
    if (static_cast<int64_t>(draft.tokens.size()) > gamma) draft.tokens.resize(gamma);
    st.draft_s += Since(t0);

    t0 = Clock::now();
    std::vector<int64_t> input = {e.context_.back()};
    input.insert(input.end(), draft.tokens.begin(), draft.tokens.end());
    const int64_t base = target.length();
    // Every row's logits: the pending token's and each guess's.
    const at::Tensor logits = target.forward(input, e.TargetOptions());  // [G+1,V]
    Verdict v;
    if (opts.sampling.greedy()) {
      // VerifyGreedy with the near-tie policy at each decision.
      const at::Tensor rows = logits.contiguous();
      const int64_t vocab = rows.size(1);
      std::vector<int64_t> extra;
      for (;;) {
        const int64_t best = e.DecideGreedy(rows.data_ptr<float>() + v.accepted * vocab, vocab, extra);
        if (v.accepted < static_cast<int64_t>(draft.tokens.size()) && draft.tokens[v.accepted] == best) {
          extra.push_back(best);
          ++v.accepted;
          continue;
        }
        v.next = best;
        break;
      }
    } else {
      const at::Tensor p = SamplingProbs(logits, opts.sampling);
      at::Tensor q = draft.probs;
      if (q.defined() && q.size(0) > static_cast<int64_t>(draft.tokens.size())) q = q.narrow(0, 0, draft.tokens.size());
      v = VerifySampling(p, q, draft.tokens, e.sampler_);
    }
    // Keep the pending token and the accepted draft tokens; forget the rejected ones.
    std::vector<int64_t> kept_rows(1 + v.accepted);
    for (int64_t i = 0; i <= v.accepted; ++i) kept_rows[i] = i;
    e.KeepFeatures(kept_rows, static_cast<int64_t>(e.context_.size()) - 1);
    target.truncate(base + 1 + v.accepted);
    ++st.target_forwards;
    st.verify_s += Since(t0);

    const int64_t offered = static_cast<int64_t>(draft.tokens.size());
    st.proposed += offered;
    st.tree_nodes += offered;
    st.accepted += v.accepted;
    for (int64_t i = 0; i < offered; ++i) ++st.offered_at[i];
    for (int64_t i = 0; i < v.accepted; ++i) ++st.accepted_at[i];
    if (v.accepted > 0) st.drafter_accepted[0] += v.accepted;
    e.Observe(offered, v.accepted, gamma);

    std::vector<int64_t> fresh(draft.tokens.begin(), draft.tokens.begin() + v.accepted);
    fresh.push_back(v.next);
    drafter.Accepted(Verified{offered, v.accepted, e.Commit(fresh)});
  }
  return e.Finish();
}

absl::StatusOr<SpecResult> SpeculativeGenerateTree(DecodeModel& target, const std::vector<Drafter*>& drafters,
                                                   const std::vector<int64_t>& prompt, const SpecOptions& opts) {
  torch::NoGradGuard no_grad;
  if (drafters.empty()) return absl::InvalidArgumentError("speculative tree: no drafters");
  if (drafters.size() > 64) return absl::InvalidArgumentError("speculative tree: more than 64 drafters");
  if (opts.tree_max_nodes < 1)
    return absl::InvalidArgumentError(absl::StrCat("speculative tree: tree_max_nodes ", opts.tree_max_nodes, ": must be >= 1"));
  Engine e(target, opts, opts.tree_max_nodes);
  AUGUR_RETURN_IF_ERROR(e.Start(prompt, drafters));
  SpecStats& st = e.out_.stats;
  while (!e.Done()) {
    const int64_t gamma = e.NextGamma();
    auto t0 = Clock::now();
    TokenTree tree(e.context_.back(), opts.tree_max_nodes);
    std::vector<int64_t> offered_by(drafters.size(), 0);
    for (size_t d = 0; d < drafters.size() && gamma > 0; ++d) {
      Draft draft = drafters[d]->ProposeTree(e.Request(d, gamma));
      offered_by[d] = static_cast<int64_t>(draft.tokens.size());
      const std::vector<int32_t> nodes = tree.AddDraft(draft, static_cast<int>(d), gamma);
      tree.AddTopK(draft, nodes, opts.tree_topk, static_cast<int>(d));
    }
    st.draft_s += Since(t0);

    t0 = Clock::now();
    const int64_t base = target.length();
    const int64_t t = tree.size();
    DecodeOptions fo = e.TargetOptions();
    // A chain keeps the default causal mask and positions, so the one-branch tree runs
    // the very same forward as SpeculativeGenerate.
    std::vector<int64_t> positions;
    if (tree.max_depth() != t - 1) {
      fo.attn_mask = tree.Mask();
      positions = tree.Positions(base);
      fo.positions = positions;
    }
    const std::vector<int64_t> tokens = tree.Tokens();
    const at::Tensor logits = target.forward(tokens, fo);  // [T,V]
    TreeVerdict v;
    if (opts.sampling.greedy()) {
      const at::Tensor rows = logits.contiguous();
      const int64_t vocab = rows.size(1);
      v = VerifyTreeGreedy(tree, [&](int32_t node) {
        std::vector<int64_t> extra;
        for (int32_t a : tree.Path(node))
          if (a != 0) extra.push_back(tree.token(a));
        return e.DecideGreedy(rows.data_ptr<float>() + node * vocab, vocab, extra);
      });
    } else {
      v = VerifyTreeSampling(tree, SamplingProbs(logits, opts.sampling), e.sampler_);
    }
    // Keep the pending token and the accepted path, in order, right after the prefix.
    std::vector<int64_t> keep = {base}, kept_rows = {0};
    for (int32_t node : v.path) keep.push_back(base + node), kept_rows.push_back(node);
    e.KeepFeatures(kept_rows, static_cast<int64_t>(e.context_.size()) - 1);
    target.compact(base, keep);
    ++st.target_forwards;
    st.verify_s += Since(t0);

    const int64_t offered = tree.max_depth();
    const int64_t accepted = static_cast<int64_t>(v.path.size());
    st.proposed += offered;
    st.tree_nodes += t - 1;
    st.accepted += accepted;
    for (int64_t i = 0; i < offered; ++i) ++st.offered_at[i];
    for (int64_t i = 0; i < accepted; ++i) ++st.accepted_at[i];
    std::vector<int64_t> accepted_by(drafters.size(), 0);
    for (int32_t node : v.path)
      for (size_t d = 0; d < drafters.size(); ++d)
        if (tree.sources(node) >> d & 1) ++accepted_by[d];
    for (size_t d = 0; d < drafters.size(); ++d) st.drafter_accepted[d] += accepted_by[d];
    e.Observe(offered, accepted, gamma);

    std::vector<int64_t> fresh;
    for (int32_t node : v.path) fresh.push_back(tree.token(node));
    fresh.push_back(v.next);
    const std::vector<int64_t> appended = e.Commit(fresh);
    for (size_t d = 0; d < drafters.size(); ++d) drafters[d]->Accepted(Verified{offered_by[d], accepted_by[d], appended});
  }
  return e.Finish();
}

}  // namespace augur
