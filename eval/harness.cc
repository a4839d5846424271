#include "eval/harness.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

#include "core/sampling.h"
#include "core/tokenizer.h"

namespace augur {

DrafterSet::DrafterSet(std::vector<std::unique_ptr<Drafter>> members) : members_(std::move(members)) {}

std::string DrafterSet::name() const {
  std::string out;
  for (const auto& m : members_) out += (out.empty() ? "" : "+") + m->name();
  return out;
}

absl::Status DrafterSet::Begin(const std::vector<int64_t>& prompt) {
  for (const auto& m : members_) AUGUR_RETURN_IF_ERROR(m->Begin(prompt));
  return absl::OkStatus();
}

Draft DrafterSet::Propose(const DraftRequest& req) {
  return members_.empty() ? Draft{} : members_.front()->Propose(req);
}

std::vector<int64_t> DrafterSet::target_layers() const {
  return members_.empty() ? std::vector<int64_t>{} : members_.front()->target_layers();
}

void DrafterSet::Accepted(const Verified& step) {
  if (!members_.empty()) members_.front()->Accepted(step);
}

std::vector<Drafter*> DrafterSet::members() const {
  std::vector<Drafter*> out;
  for (const auto& m : members_) out.push_back(m.get());
  return out;
}

absl::StatusOr<PromptRecord> RunPrompt(DecodeModel& target, Drafter& drafter, const EvalPrompt& prompt,
                                       int64_t index, const SpecOptions& opts, const Tokenizer* tokenizer) {
  auto* set = dynamic_cast<DrafterSet*>(&drafter);
  auto result = set != nullptr ? SpeculativeGenerateTree(target, set->members(), prompt.ids, opts)
                               : SpeculativeGenerate(target, drafter, prompt.ids, opts);
  if (!result.ok())
    return absl::Status(result.status().code(),
                        absl::StrCat(drafter.name(), " on ", prompt.source, ": ", result.status().message()));
  PromptRecord r;
  r.index = index;
  r.source = prompt.source;
  r.prompt_tokens = static_cast<int64_t>(prompt.ids.size());
  r.tokens = std::move(result->tokens);
  r.hit_eos = result->hit_eos;
  r.stats = std::move(result->stats);
  if (tokenizer != nullptr) {
    std::vector<int32_t> ids;
    for (int64_t t : r.tokens)
      if (t >= 0 && t < tokenizer->vocab_size()) ids.push_back(static_cast<int32_t>(t));
    auto text = tokenizer->Decode(ids);
    if (text.ok()) r.text = std::move(*text);
  }
  return r;
}

absl::StatusOr<std::vector<int64_t>> ReferenceGreedy(LlamaModelImpl& target, const std::vector<int64_t>& prompt,
                                                     int64_t max_new, int64_t eos_id) {
  GenerateOptions go;
  go.max_new = max_new;
  go.sampling.temperature = 0;
  go.eos_id = eos_id;
  AUGUR_ASSIGN_OR_RETURN(GenerateResult res, Generate(target, prompt, go));
  return res.tokens;
}

int64_t FirstDifference(const std::vector<int64_t>& expected, const std::vector<int64_t>& got) {
  const size_t n = std::min(expected.size(), got.size());
  for (size_t i = 0; i < n; ++i)
    if (expected[i] != got[i]) return static_cast<int64_t>(i);
  return expected.size() == got.size() ? -1 : static_cast<int64_t>(n);
}

nlohmann::json ProbeForwardCost(DecodeModel& target, const std::vector<int64_t>& prompt,
                                const std::vector<int64_t>& tokens_per_forward, int64_t iters) {
  using Clock = std::chrono::steady_clock;
  torch::NoGradGuard no_grad;
  const int64_t max_t = *std::max_element(tokens_per_forward.begin(), tokens_per_forward.end());
  std::vector<int64_t> warm = prompt;
  const int64_t room = target.capacity() - max_t;
  if (static_cast<int64_t>(warm.size()) > room) warm.resize(static_cast<size_t>(std::max<int64_t>(room, 1)));
  target.reset();
  DecodeOptions pre;
  pre.prefill = true;
  target.forward(warm, pre);
  const int64_t base = target.length();
  nlohmann::json ms = nlohmann::json::object();
  DecodeOptions all;
  all.logits_last = 0;
  for (int64_t t : tokens_per_forward) {
    // Tokens repeated from the prompt: the cost does not depend on the ids.
    std::vector<int64_t> ids(static_cast<size_t>(t));
    for (int64_t i = 0; i < t; ++i) ids[i] = prompt[static_cast<size_t>(i) % prompt.size()];
    std::vector<double> times;
    for (int64_t it = 0; it < iters + 2; ++it) {
      const auto t0 = Clock::now();
      (void)GreedyTokens(target.forward(ids, all));  // and a read of the logits, as verification does
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      target.truncate(base);
      if (it >= 2) times.push_back(dt * 1e3);  // the first two warm up
    }
    std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
    ms[std::to_string(t)] = times[times.size() / 2];
  }
  target.reset();
  return {{"forward_ms", ms}, {"iters", iters}, {"context", static_cast<int64_t>(warm.size())}};
}

}  // namespace augur
