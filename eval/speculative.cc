#include "eval/speculative.h"

#include <torch/torch.h>

#include <chrono>

#include "eval/verify.h"

namespace augur {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

absl::StatusOr<SpecResult> SpeculativeGenerate(LlamaModelImpl& target, Drafter& drafter,
                                               const std::vector<int64_t>& prompt, const SpecOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.sampling.Validate());
  const ModelConfig& cfg = target.config();
  if (prompt.empty()) return absl::InvalidArgumentError("speculative: prompt: empty (give at least one token)");
  if (opts.gamma < 0) return absl::InvalidArgumentError(absl::StrCat("speculative: --gamma ", opts.gamma, ": must be >= 0"));
  for (int64_t id : prompt)
    if (id < 0 || id >= cfg.vocab_size)
      return absl::InvalidArgumentError(absl::StrCat("speculative: prompt: token id ", id,
                                                     " is outside the vocabulary [0, ", cfg.vocab_size, ")"));
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t capacity = n_prompt + opts.max_new + opts.gamma + 1;
  if (capacity > cfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("speculative: prompt (", n_prompt, " tokens) + max_new ",
                                                   opts.max_new, " + gamma exceeds max_position_embeddings ",
                                                   cfg.max_position_embeddings));
  const int64_t eos = opts.eos_id == -2 ? cfg.eos_token_id : opts.eos_id;
  AUGUR_RETURN_IF_ERROR(drafter.Begin(prompt));

  torch::NoGradGuard no_grad;
  target.eval();
  const auto device = target.device();
  const auto long_opts = torch::TensorOptions().dtype(torch::kInt64);
  Sampler sampler(opts.seed);
  SpecResult out;
  SpecStats& st = out.stats;
  st.offered_at.assign(std::max<int64_t>(opts.gamma, 1), 0);
  st.accepted_at.assign(std::max<int64_t>(opts.gamma, 1), 0);
  const auto t_start = Clock::now();

  // Invariant: the target cache holds every context token except the last ("pending"),
  // whose logits the next verification forward computes along with the draft's.
  KVCache cache = target.new_cache(1, capacity);
  std::vector<int64_t> context = prompt;
  if (n_prompt > 1) {
    std::vector<int64_t> head(prompt.begin(), prompt.end() - 1);
    ForwardOptions fo;
    fo.logits_last = 1;
    target.forward(torch::tensor(head, long_opts).view({1, -1}).to(device), &cache, fo);
  }
  st.prefill_s = Since(t_start);

  while (static_cast<int64_t>(out.tokens.size()) < opts.max_new && !out.hit_eos) {
    const int64_t remaining = opts.max_new - static_cast<int64_t>(out.tokens.size());
    // Drafting more than remaining-1 tokens cannot help: the target adds one of its own.
    const int64_t gamma = std::min(opts.gamma, remaining - 1);
    auto t0 = Clock::now();
    Draft draft = gamma > 0 ? drafter.Propose(context, gamma, opts.sampling, sampler) : Draft{};
    if (static_cast<int64_t>(draft.tokens.size()) > gamma) draft.tokens.resize(gamma);
    st.draft_s += Since(t0);

    t0 = Clock::now();
    std::vector<int64_t> input = {context.back()};
    input.insert(input.end(), draft.tokens.begin(), draft.tokens.end());
    const int64_t base = cache.length();
    const at::Tensor logits =
        target.forward(torch::tensor(input, long_opts).view({1, -1}).to(device), &cache).logits[0];  // [G+1,V]
    Verdict v;
    if (opts.sampling.greedy()) {
      v = VerifyGreedy(logits, draft.tokens);
    } else {
      const at::Tensor p = SamplingProbs(logits, opts.sampling);
      at::Tensor q = draft.probs;
      if (q.defined() && q.size(0) > static_cast<int64_t>(draft.tokens.size())) q = q.narrow(0, 0, draft.tokens.size());
      v = VerifySampling(p, q, draft.tokens, sampler);
    }
    // Keep the pending token and the accepted draft tokens; forget the rejected ones.
    cache.truncate(base + 1 + v.accepted);
    ++st.target_forwards;
    st.verify_s += Since(t0);

    st.proposed += static_cast<int64_t>(draft.tokens.size());
    st.accepted += v.accepted;
    for (size_t i = 0; i < draft.tokens.size(); ++i) ++st.offered_at[i];
    for (int64_t i = 0; i < v.accepted; ++i) ++st.accepted_at[i];

    std::vector<int64_t> fresh(draft.tokens.begin(), draft.tokens.begin() + v.accepted);
    fresh.push_back(v.next);
    for (int64_t tok : fresh) {
      if (static_cast<int64_t>(out.tokens.size()) >= opts.max_new) break;
      if (tok == eos) {
        out.hit_eos = true;
        break;
      }
      out.tokens.push_back(tok);
      context.push_back(tok);
    }
  }
  st.total_s = Since(t_start);
  return out;
}

}  // namespace augur
