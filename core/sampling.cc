#include "core/sampling.h"

#include <algorithm>

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>

#include <absl/strings/str_format.h>

#include "core/generate_loop.h"
#include "core/model.h"

namespace augur {
namespace {

// [..., V] -> [N, V] view plus the original shape to restore.
at::Tensor Rows(const at::Tensor& t) { return t.reshape({-1, t.size(-1)}); }

}  // namespace

absl::Status SamplingParams::Validate() const {
  if (!std::isfinite(temperature) || temperature < 0)
    return absl::InvalidArgumentError(
        absl::StrCat("sampling: temperature ", temperature, " must be a finite number >= 0 (0 = greedy)"));
  if (top_k < 0)
    return absl::InvalidArgumentError(absl::StrCat("sampling: top-k ", top_k, " must be >= 0 (0 = off)"));
  if (!(top_p > 0.0 && top_p <= 1.0))
    return absl::InvalidArgumentError(absl::StrCat("sampling: top-p ", top_p, " must be in (0, 1] (1 = off)"));
  return absl::OkStatus();
}

std::string SamplingParams::ToString() const {
  if (greedy()) return "greedy";
  std::string s = absl::StrFormat("T=%g", temperature);
  if (top_k > 0) absl::StrAppend(&s, " top-k=", top_k);
  if (top_p < 1.0) absl::StrAppend(&s, absl::StrFormat(" top-p=%g", top_p));
  return s;
}

at::Tensor TopKFilter(const at::Tensor& logits, int64_t k) {
  const int64_t V = logits.size(-1);
  if (k <= 0 || k >= V) return logits;
  at::Tensor rows = Rows(logits);
  // A stable descending sort puts equal logits in id order, so the cut at k is exact.
  auto [sorted, order] = torch::sort(rows, /*stable=*/true, /*dim=*/-1, /*descending=*/true);
  at::Tensor keep_sorted = (torch::arange(V, rows.options().dtype(torch::kLong)) < k)
                               .unsqueeze(0)
                               .expand_as(order);
  at::Tensor keep = torch::zeros_like(rows, rows.options().dtype(torch::kBool)).scatter(1, order, keep_sorted);
  return rows.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity()).view(logits.sizes());
}

at::Tensor TopPFilter(const at::Tensor& probs, double p) {
  if (p >= 1.0) return probs;
  at::Tensor rows = Rows(probs);
  auto [sorted, order] = torch::sort(rows, /*stable=*/true, /*dim=*/-1, /*descending=*/true);
  // Token i (in sorted order) is needed iff the mass strictly before it is still below p;
  // that keeps exactly the smallest prefix reaching p. Double precision so that sums like
  // 0.5 + 0.25 compare exactly against p.
  at::Tensor sorted64 = sorted.to(torch::kDouble);
  at::Tensor before = sorted64.cumsum(-1) - sorted64;
  at::Tensor keep_sorted = before < p;
  at::Tensor keep = torch::zeros_like(rows, rows.options().dtype(torch::kBool)).scatter(1, order, keep_sorted);
  at::Tensor kept = rows * keep.to(rows.scalar_type());
  return (kept / kept.sum(-1, /*keepdim=*/true)).view(probs.sizes());
}

at::Tensor GreedyTokens(const at::Tensor& logits) { return logits.argmax(-1); }

at::Tensor SamplingProbs(const at::Tensor& logits, const SamplingParams& params) {
  const int64_t V = logits.size(-1);
  if (params.greedy())
    return torch::one_hot(GreedyTokens(logits), V).to(torch::kFloat);
  at::Tensor scaled = logits.to(torch::kFloat) / params.temperature;
  scaled = TopKFilter(scaled, params.top_k);
  at::Tensor probs = torch::softmax(scaled, -1);
  return TopPFilter(probs, params.top_p);
}

double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int64_t Sampler::SampleFromProbs(const at::Tensor& probs) {
  at::Tensor w = probs.reshape({-1}).to(torch::kCPU, torch::kDouble).contiguous();
  const double* p = w.data_ptr<double>();
  const int64_t V = w.numel();
  double total = 0;
  for (int64_t i = 0; i < V; ++i)
    if (p[i] > 0) total += p[i];
  if (!(total > 0) || !std::isfinite(total)) return w.argmax().item<int64_t>();
  const double u = Uniform() * total;
  double cum = 0;
  int64_t last = -1;
  for (int64_t i = 0; i < V; ++i) {
    if (!(p[i] > 0)) continue;
    cum += p[i];
    last = i;
    if (u < cum) return i;
  }
  return last;  // rounding left u at the very top of the range
}

int64_t Sampler::Sample(const at::Tensor& logits, const SamplingParams& params) {
  at::Tensor row = logits.reshape({-1});
  if (params.greedy()) return GreedyTokens(row).item<int64_t>();
  return SampleFromProbs(SamplingProbs(row, params));
}

std::string Sampler::State() const {
  std::ostringstream os;
  os << rng_;
  return os.str();
}

absl::Status Sampler::SetState(const std::string& state) {
  std::istringstream is(state);
  std::mt19937_64 r;
  is >> r;
  if (is.fail()) return absl::InvalidArgumentError("sampling: generator state: not a mt19937_64 state");
  rng_ = r;
  return absl::OkStatus();
}

absl::Status CheckGenerate(const ModelConfig& cfg, const std::vector<int64_t>& prompt, const GenerateOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.sampling.Validate());
  if (prompt.empty()) return absl::InvalidArgumentError("generate: prompt: empty (give at least one token)");
  if (opts.max_new < 0) return absl::InvalidArgumentError(absl::StrCat("generate: --max-new ", opts.max_new, ": must be >= 0"));
  for (int64_t id : prompt)
    if (id < 0 || id >= cfg.vocab_size)
      return absl::InvalidArgumentError(
          absl::StrCat("generate: prompt: token id ", id, " is outside the vocabulary [0, ", cfg.vocab_size, ")"));
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt + std::max<int64_t>(opts.max_new, 1) > cfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("generate: prompt (", n_prompt, " tokens) + --max-new ",
                                                   opts.max_new, " exceeds the model's max_position_embeddings ",
                                                   cfg.max_position_embeddings, "; shorten one of them"));
  return absl::OkStatus();
}

GenerateResult GenerateLoop(const ModelConfig& cfg, const GenerateOptions& opts, const std::function<at::Tensor()>& prefill,
                            const std::function<at::Tensor(int64_t)>& step,
                            const std::function<void(int64_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  const int64_t eos = opts.eos_id == -2 ? cfg.eos_token_id : opts.eos_id;
  GenerateResult out;
  Sampler sampler(opts.seed);
  auto t0 = Clock::now();
  at::Tensor logits = prefill();
  auto t1 = Clock::now();
  out.prefill_s = std::chrono::duration<double>(t1 - t0).count();
  for (int64_t i = 0; i < opts.max_new; ++i) {
    const int64_t next = sampler.Sample(logits.reshape({-1}), opts.sampling);
    if (next == eos || std::find(opts.stop_ids.begin(), opts.stop_ids.end(), next) != opts.stop_ids.end()) {
      out.hit_eos = true;
      break;
    }
    out.tokens.push_back(next);
    if (on_token) on_token(next);
    if (i + 1 == opts.max_new) break;
    logits = step(next);
    ++out.decode_forwards;
  }
  out.decode_s = std::chrono::duration<double>(Clock::now() - t1).count();
  return out;
}

absl::StatusOr<GenerateResult> Generate(LlamaModelImpl& model, const std::vector<int64_t>& prompt,
                                        const GenerateOptions& opts,
                                        const std::function<void(int64_t)>& on_token) {
  const ModelConfig& cfg = model.config();
  AUGUR_RETURN_IF_ERROR(CheckGenerate(cfg, prompt, opts));
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  // The last new token is never fed back, so the cache holds prompt + max_new - 1 entries.
  const int64_t capacity = n_prompt + std::max<int64_t>(opts.max_new, 1);
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  KVCache cache = model.new_cache(1, capacity);
  const auto device = model.device();
  ForwardOptions last_only;
  last_only.logits_last = 1;
  GenerateResult out = GenerateLoop(
      cfg, opts,
      [&] {
        const at::Tensor ids = torch::tensor(prompt, torch::kLong).view({1, n_prompt}).to(device);
        return model.forward(ids, &cache, last_only).logits;  // [1, 1, V]
      },
      [&](int64_t next) {
        const at::Tensor ids = torch::full({1, 1}, next, torch::TensorOptions().dtype(torch::kLong).device(device));
        return model.forward(ids, &cache, last_only).logits;
      },
      on_token);
  model.train(was_training);
  return out;
}

}  // namespace augur
