#include "distill/teacher_gen.h"

#include <torch/torch.h>

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include "core/chat_prompt.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/model.h"
#include "core/progress.h"
#include "core/sampling.h"
#include "core/tokenizer.h"
#include "datasets/token_windows.h"

namespace augur::distill {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Mix(uint64_t x) { return SplitMix64(x); }

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

}  // namespace

const char* TeacherGenModeName(TeacherGenMode mode) {
  switch (mode) {
    case TeacherGenMode::kGreedy: return "greedy";
    case TeacherGenMode::kSample: return "sample";
    case TeacherGenMode::kTeacherForced: return "teacher-forced";
  }
  return "?";
}

absl::StatusOr<TeacherGenMode> ParseTeacherGenMode(const std::string& name) {
  for (TeacherGenMode m : {TeacherGenMode::kGreedy, TeacherGenMode::kSample, TeacherGenMode::kTeacherForced})
    if (name == TeacherGenModeName(m)) return m;
  return absl::InvalidArgumentError(
      absl::StrCat("distill gen: unknown --mode '", name, "' (greedy, sample or teacher-forced)"));
}

absl::Status TeacherGenOptions::Validate() const {
  auto bad = [](const std::string& msg) { return absl::InvalidArgumentError("distill gen: " + msg); };
  if (top_k < 1) return bad(absl::StrCat("--top-k ", top_k, " must be >= 1"));
  if (mode != TeacherGenMode::kTeacherForced && max_new < 1) return bad(absl::StrCat("--max-new ", max_new, " must be >= 1"));
  if (mode == TeacherGenMode::kSample && !(temperature > 0 && std::isfinite(temperature)))
    return bad(absl::StrCat("--temperature ", temperature, " must be > 0 with --mode sample (use --mode greedy for 0)"));
  if (!(store_temperature > 0 && std::isfinite(store_temperature)))
    return bad(absl::StrCat("--store-temperature ", store_temperature, " must be > 0"));
  if (batch < 1) return bad(absl::StrCat("--batch ", batch, " must be >= 1"));
  if (flush_seconds < 0) return bad("flush interval must be >= 0");
  return absl::OkStatus();
}

// ---- prompts ----------------------------------------------------------------------------

absl::StatusOr<PromptSet> StorePrompts(const std::string& path, const StorePromptOptions& opts,
                                       const Tokenizer* tokenizer) {
  if (opts.window < 1 || opts.prompt_len < 1 || opts.prompt_len > opts.window)
    return absl::InvalidArgumentError(absl::StrCat("distill gen: prompt length ", opts.prompt_len, " and window ",
                                                   opts.window, " must satisfy 1 <= prompt length <= window"));
  AUGUR_ASSIGN_OR_RETURN(auto store, TokenStore::Open(path));
  if (tokenizer != nullptr) AUGUR_RETURN_IF_ERROR(store->Check(*tokenizer));
  AUGUR_ASSIGN_OR_RETURN(SplitStream stream, SplitStream::Create(store, opts.split));
  const int64_t windows = stream.size() / opts.window;
  if (windows == 0)
    return absl::FailedPreconditionError(absl::StrCat("distill gen: ", path, ": the ", SplitName(opts.split), " split has ",
                                                      stream.size(), " tokens, fewer than one window of ", opts.window,
                                                      "; use --split train or shorter windows"));
  // Fisher-Yates over all windows with a platform-independent generator: the order, and so
  // every prefix of it, depends only on (seed, number of windows).
  std::vector<int64_t> order(static_cast<size_t>(windows));
  for (int64_t i = 0; i < windows; ++i) order[i] = i;
  uint64_t state = Mix(opts.seed ^ 0x7465616368657221ULL);
  for (int64_t i = windows - 1; i > 0; --i) {
    state = Mix(state);
    const int64_t j = static_cast<int64_t>((static_cast<unsigned __int128>(state) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  const int64_t n = opts.num_prompts > 0 ? std::min(opts.num_prompts, windows) : windows;
  PromptSet set;
  set.tokenizer_fingerprint = store->info().tokenizer_fingerprint;
  set.vocab_size = store->info().vocab_size;
  set.source = absl::StrCat("token store ", BaseName(path), " (", store->num_tokens(), " tokens, tokenizer ",
                            set.tokenizer_fingerprint.substr(0, 12), "): ", SplitName(opts.split), " windows of ",
                            opts.window, " tokens, prompt ", opts.prompt_len, ", order seed ", opts.seed);
  set.prompts.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    TeacherPrompt p;
    p.index = order[i];
    p.tokens.resize(static_cast<size_t>(opts.prompt_len));
    AUGUR_RETURN_IF_ERROR(stream.Read(order[i] * opts.window, opts.prompt_len, p.tokens.data()));
    set.prompts.push_back(std::move(p));
  }
  return set;
}

absl::StatusOr<PromptSet> JsonlPrompts(const std::string& path, const Tokenizer& tokenizer, int64_t num_prompts,
                                       const std::string& chat_template) {
  if (!FileExists(path)) return absl::NotFoundError(absl::StrCat("distill gen: ", path, ": no such file"));
  const OptionalChat chat = TryLoadChatSetup(tokenizer, tokenizer.source(), chat_template);
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  PromptSet set;
  set.tokenizer_fingerprint = tokenizer.fingerprint();
  set.vocab_size = tokenizer.vocab_size();
  set.source = absl::StrCat("jsonl ", BaseName(path), " (fingerprint ", Fingerprint(text).substr(0, 16), ")");
  size_t begin = 0;
  int64_t line_no = 0;
  while (begin < text.size() && (num_prompts <= 0 || static_cast<int64_t>(set.prompts.size()) < num_prompts)) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object())
      return absl::InvalidArgumentError(absl::StrCat("distill gen: ", path, ":", line_no,
                                                     ": expected a JSON object with \"prompt\" or \"messages\""));
    TeacherPrompt p;
    p.index = static_cast<int64_t>(set.prompts.size());
    AUGUR_ASSIGN_OR_RETURN(p.tokens, EncodePromptObject(j, tokenizer, chat, absl::StrCat(path, ":", line_no)));
    set.prompts.push_back(std::move(p));
  }
  if (set.prompts.empty()) return absl::InvalidArgumentError(absl::StrCat("distill gen: ", path, ": no prompts"));
  return set;
}

// ---- generation and scoring -----------------------------------------------------------------

absl::StatusOr<std::vector<std::vector<int64_t>>> ContinueBatch(LlamaModelImpl& target,
                                                                const std::vector<std::vector<int64_t>>& prompts,
                                                                const std::vector<int64_t>& prompt_indices,
                                                                const TeacherGenOptions& opts) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  AUGUR_CHECK(B > 0 && prompt_indices.size() == prompts.size());
  // Rows of different lengths are left-padded to the longest: each row's tokens keep their
  // own positions 0..L-1, and no token ever sees a pad (prefill mask, then prefix_mask).
  int64_t P = 0;
  for (const auto& p : prompts) P = std::max<int64_t>(P, static_cast<int64_t>(p.size()));
  std::vector<int64_t> pad(static_cast<size_t>(B));
  bool padded = false;
  for (int64_t b = 0; b < B; ++b) {
    pad[b] = P - static_cast<int64_t>(prompts[b].size());
    padded |= pad[b] > 0;
  }
  const ModelConfig& cfg = target.config();
  if (P + opts.max_new > cfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("distill gen: prompt (", P, " tokens) + --max-new ", opts.max_new,
                                                   " exceeds the target's max_position_embeddings ",
                                                   cfg.max_position_embeddings));
  const int64_t eos = opts.eos_id == -2 ? cfg.eos_token_id : opts.eos_id;
  SamplingParams params;
  params.temperature = opts.mode == TeacherGenMode::kSample ? opts.temperature : 0.0;
  std::vector<Sampler> samplers;
  for (int64_t b = 0; b < B; ++b) samplers.emplace_back(Mix(opts.seed ^ Mix(static_cast<uint64_t>(prompt_indices[b]))));

  torch::NoGradGuard no_grad;
  const auto device = target.device();
  KVCache cache = target.new_cache(B, P + opts.max_new);
  ForwardOptions last_only;
  last_only.logits_last = 1;
  std::vector<int64_t> flat(static_cast<size_t>(B * P), 0);
  for (int64_t b = 0; b < B; ++b) std::copy(prompts[b].begin(), prompts[b].end(), flat.begin() + b * P + pad[b]);
  at::Tensor ids = torch::tensor(flat, torch::kLong).view({B, P}).to(device);
  ForwardOptions prefill = last_only;
  at::Tensor visible;  // [B, cached]: false on pads
  if (padded) {
    const auto lopt = torch::TensorOptions().dtype(torch::kLong);
    at::Tensor col = torch::arange(P, lopt).view({1, P});
    at::Tensor pads = torch::tensor(pad, lopt).view({B, 1});
    visible = col >= pads;                                                   // [B,P]
    prefill.positions = torch::clamp_min(col - pads, 0);                     // [B,P]
    at::Tensor causal = torch::ones({P, P}, torch::kBool).tril().unsqueeze(0);
    at::Tensor eye = torch::eye(P, torch::kBool).unsqueeze(0);
    prefill.attn_mask = (causal & visible.unsqueeze(1)) | eye;               // a pad sees only itself
  }
  at::Tensor logits = target.forward(ids, &cache, prefill).logits;  // [B,1,V]

  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  int64_t live = B;
  for (int64_t step = 0; step < opts.max_new && live > 0; ++step) {
    at::Tensor rows = logits.reshape({B, -1}).to(torch::kCPU);
    std::vector<int64_t> next(static_cast<size_t>(B), 0);
    if (params.greedy()) {
      at::Tensor g = GreedyTokens(rows).contiguous();
      std::copy(g.data_ptr<int64_t>(), g.data_ptr<int64_t>() + B, next.begin());
    }
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;  // a finished row is fed its EOS again; its outputs are ignored
      if (!params.greedy()) next[b] = samplers[b].Sample(rows[b], params);
      out[b].push_back(next[b]);
      if (next[b] == eos || static_cast<int64_t>(out[b].size()) == opts.max_new) {
        done[b] = true;
        --live;
      }
    }
    if (live == 0) break;
    for (int64_t b = 0; b < B; ++b)
      if (done[b]) next[b] = out[b].back();
    at::Tensor step_ids = torch::tensor(next, torch::kLong).view({B, 1}).to(device);
    ForwardOptions step_opts = last_only;
    if (padded) {
      const int64_t cached = P + step;
      std::vector<int64_t> pos(static_cast<size_t>(B));
      for (int64_t b = 0; b < B; ++b) pos[b] = cached - pad[b];
      step_opts.positions = torch::tensor(pos, torch::kLong).view({B, 1});
      step_opts.prefix_mask = torch::cat({visible, torch::ones({B, step}, torch::kBool)}, 1);
    }
    logits = target.forward(step_ids, &cache, step_opts).logits;
  }
  return out;
}

TopKScores ScoreTopK(const at::Tensor& logits, int64_t k, double temperature) {
  torch::NoGradGuard no_grad;
  at::Tensor logp = torch::log_softmax(logits.to(torch::kFloat) / temperature, -1);
  auto [values, ids] = logp.topk(k, -1, /*largest=*/true, /*sorted=*/true);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  at::Tensor rest = torch::logsumexp(logp.scatter(-1, ids, neg_inf), -1);  // all -inf when K = V -> -inf
  return {ids, values, rest};
}

std::vector<TeacherSequence> ScoreSequences(LlamaModelImpl& target, const std::vector<std::vector<int64_t>>& sequences,
                                            const std::vector<int64_t>& prompt_lens,
                                            const std::vector<int64_t>& prompt_indices, int64_t top_k,
                                            double store_temperature) {
  torch::NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(sequences.size());
  int64_t L_max = 0;
  for (const auto& s : sequences) L_max = std::max<int64_t>(L_max, static_cast<int64_t>(s.size()));
  // Right padding with a valid id: under the causal mask it never reaches a real position.
  std::vector<int64_t> flat(static_cast<size_t>(B * L_max), 0);
  for (int64_t b = 0; b < B; ++b) std::copy(sequences[b].begin(), sequences[b].end(), flat.begin() + b * L_max);
  at::Tensor ids = torch::tensor(flat, torch::kLong).view({B, L_max}).to(target.device());
  at::Tensor logits = target.forward(ids).logits;  // [B,L,V]
  std::vector<TeacherSequence> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = static_cast<int64_t>(sequences[b].size());
    // One row at a time keeps the log-softmax temporaries at [L, V].
    TopKScores s = ScoreTopK(logits[b].narrow(0, 0, L), top_k, store_temperature);
    at::Tensor top_ids = s.ids.to(torch::kCPU, torch::kInt).contiguous();
    at::Tensor top_lp = s.logprobs.to(torch::kCPU).contiguous();
    at::Tensor rest = s.rest.to(torch::kCPU).contiguous();
    TeacherSequence& seq = out[b];
    seq.prompt_index = prompt_indices[b];
    seq.prompt_len = prompt_lens[b];
    seq.tokens.assign(sequences[b].begin(), sequences[b].end());
    seq.topk_ids.assign(top_ids.data_ptr<int32_t>(), top_ids.data_ptr<int32_t>() + L * top_k);
    seq.topk_logprobs.assign(top_lp.data_ptr<float>(), top_lp.data_ptr<float>() + L * top_k);
    seq.rest_logmass.assign(rest.data_ptr<float>(), rest.data_ptr<float>() + L);
  }
  return out;
}

// ---- the run -----------------------------------------------------------------------------------

absl::StatusOr<TeacherGenSummary> GenerateTeacherData(LlamaModelImpl& target, const PromptSet& prompts,
                                                      const std::string& out, const TeacherGenOptions& opts) {
  AUGUR_RETURN_IF_ERROR(opts.Validate());
  const ModelConfig& cfg = target.config();
  const bool generating = opts.mode != TeacherGenMode::kTeacherForced;
  if (opts.top_k > cfg.vocab_size)
    return absl::InvalidArgumentError(
        absl::StrCat("distill gen: --top-k ", opts.top_k, " exceeds the target's vocabulary of ", cfg.vocab_size));
  if (prompts.vocab_size > cfg.vocab_size)
    return absl::FailedPreconditionError(absl::StrCat("distill gen: the prompts (", prompts.source, ") use a vocabulary of ",
                                                      prompts.vocab_size, " but the target's has ", cfg.vocab_size,
                                                      "; they were made for another model"));
  if (!opts.target_tokenizer_fingerprint.empty() && !prompts.tokenizer_fingerprint.empty() &&
      opts.target_tokenizer_fingerprint != prompts.tokenizer_fingerprint)
    return absl::FailedPreconditionError(absl::StrCat(
        "distill gen: the prompts (", prompts.source, ") were tokenized with tokenizer ",
        prompts.tokenizer_fingerprint.substr(0, 12), " but the target was trained with ",
        opts.target_tokenizer_fingerprint.substr(0, 12), "; use prompts made with the target's tokenizer"));
  for (const TeacherPrompt& p : prompts.prompts) {
    const int64_t len = static_cast<int64_t>(p.tokens.size()) + (generating ? opts.max_new : 0);
    if (len > cfg.max_position_embeddings)
      return absl::InvalidArgumentError(absl::StrCat("distill gen: prompt ", p.index, " (", p.tokens.size(), " tokens)",
                                                     generating ? absl::StrCat(" + --max-new ", opts.max_new) : "",
                                                     " exceeds the target's max_position_embeddings ",
                                                     cfg.max_position_embeddings));
    for (int64_t id : p.tokens)
      if (id < 0 || id >= cfg.vocab_size)
        return absl::InvalidArgumentError(absl::StrCat("distill gen: prompt ", p.index, ": token id ", id,
                                                       " outside the target's vocabulary [0, ", cfg.vocab_size, ")"));
  }

  TeacherStoreInfo info;
  info.target_fingerprint = opts.target_fingerprint;
  info.tokenizer_fingerprint =
      !prompts.tokenizer_fingerprint.empty() ? prompts.tokenizer_fingerprint : opts.target_tokenizer_fingerprint;
  info.vocab_size = cfg.vocab_size;
  info.top_k = opts.top_k;
  info.temperature = opts.store_temperature;
  info.mode = TeacherGenModeName(opts.mode);
  if (opts.mode == TeacherGenMode::kGreedy) info.generation = absl::StrCat("max-new ", opts.max_new);
  if (opts.mode == TeacherGenMode::kSample)
    info.generation = absl::StrFormat("max-new %d temperature %g seed %d", opts.max_new, opts.temperature, opts.seed);
  info.source = prompts.source;
  info.created_by = opts.created_by;
  auto writer_or = opts.resume ? TeacherStoreWriter::Resume(out, info) : TeacherStoreWriter::Create(out, info);
  if (!writer_or.ok()) return writer_or.status();
  auto writer = std::move(writer_or).value();

  // Batches: the prompts ordered by length (stable), in chunks of --batch; rows of unequal
  // length are left-padded (ContinueBatch). Batches are made over all prompts, done or not,
  // so a resumed run pads and computes every batch exactly as the first run did; a batch whose
  // prompts are all done is skipped, a partly done one is recomputed and only its new rows
  // are written.
  TeacherGenSummary sum;
  std::vector<const TeacherPrompt*> ordered;
  for (const TeacherPrompt& p : prompts.prompts) ordered.push_back(&p);
  std::stable_sort(ordered.begin(), ordered.end(), [](const TeacherPrompt* a, const TeacherPrompt* b) {
    return a->tokens.size() < b->tokens.size();
  });
  for (const TeacherPrompt* p : ordered) sum.skipped += writer->is_done(p->index) ? 1 : 0;
  std::vector<std::vector<const TeacherPrompt*>> batches;
  for (size_t i = 0; i < ordered.size(); i += static_cast<size_t>(opts.batch)) {
    std::vector<const TeacherPrompt*> batch(ordered.begin() + i,
                                            ordered.begin() + std::min(ordered.size(), i + static_cast<size_t>(opts.batch)));
    bool any_pending = false;
    for (const TeacherPrompt* p : batch) any_pending |= !writer->is_done(p->index);
    if (any_pending) batches.push_back(std::move(batch));
  }
  const int64_t pending = static_cast<int64_t>(prompts.prompts.size()) - sum.skipped;

  const bool was_training = target.is_training();
  target.eval();
  const auto start = Clock::now();
  auto last_flush = start;
  std::unique_ptr<Progress> progress;
  if (opts.progress) progress = std::make_unique<Progress>("distill gen", pending, "seq");
  absl::Status st = absl::OkStatus();
  bool stopped = false;
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    const auto& batch = batches[bi];
    std::vector<std::vector<int64_t>> seqs;
    std::vector<int64_t> indices, prompt_lens;
    for (const TeacherPrompt* p : batch) {
      seqs.push_back(p->tokens);
      indices.push_back(p->index);
      prompt_lens.push_back(static_cast<int64_t>(p->tokens.size()));
    }
    if (generating) {
      const auto t0 = Clock::now();
      auto cont = ContinueBatch(target, seqs, indices, opts);
      if (!cont.ok()) {
        st = cont.status();
        break;
      }
      for (size_t b = 0; b < seqs.size(); ++b) {
        seqs[b].insert(seqs[b].end(), (*cont)[b].begin(), (*cont)[b].end());
        sum.new_tokens += static_cast<int64_t>((*cont)[b].size());
      }
      sum.generate_seconds += Seconds(t0);
    }
    const auto t1 = Clock::now();
    std::vector<TeacherSequence> scored =
        ScoreSequences(target, seqs, prompt_lens, indices, opts.top_k, opts.store_temperature);
    sum.score_seconds += Seconds(t1);
    for (const TeacherSequence& seq : scored) {
      if (writer->is_done(seq.prompt_index)) continue;  // written before a resume
      if (st = writer->Add(seq); !st.ok()) break;
      ++sum.sequences;
      sum.positions += seq.length();
    }
    if (!st.ok()) break;
    ++sum.batches;
    if (opts.flush_seconds == 0 || Seconds(last_flush) >= opts.flush_seconds) {
      if (st = writer->Flush(); !st.ok()) break;
      last_flush = Clock::now();
    }
    if (progress) {
      const double secs = std::max(1e-9, Seconds(start));
      progress->update(sum.sequences, absl::StrFormat("%.2f seq/s %.0f tok/s", sum.sequences / secs,
                                                      (generating ? sum.new_tokens : sum.positions) / secs));
    }
    if (opts.stop_after_batches > 0 && sum.batches >= opts.stop_after_batches && bi + 1 < batches.size()) {
      stopped = true;
      break;
    }
  }
  target.train(was_training);
  if (!st.ok()) {
    (void)writer->Flush();  // keep what was scored for --resume
    return st;
  }
  sum.finished = !stopped;
  if (sum.finished) {
    AUGUR_RETURN_IF_ERROR(writer->Finish());
  } else {
    AUGUR_RETURN_IF_ERROR(writer->Flush());
  }
  sum.seconds = Seconds(start);
  if (progress) progress->finish(absl::StrFormat("%d sequences, %d positions in %s", sum.sequences, sum.positions,
                                                 FormatDuration(sum.seconds)));
  return sum;
}

}  // namespace augur::distill
