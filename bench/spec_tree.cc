// Speculative decoding with each drafter alone and all of them as a token tree, greedy,
// on held-out prompts of a token store: tau, alpha, tokens/s and wall-clock speedup
// against target-only decoding by the same engine (gamma 0), and an exactness check.
//
//   spec_tree --target DIR [--drafter DIR] [--datastore FILE.h5] --store FILE.h5
//             [--prompts 8] [--prompt-len 64] [--max-new 64] [--gamma 4] [--threads 1]
//             [--temperature 0]   (sampling: "exact" is not checked, outputs differ by design)
#include <torch/torch.h>

#include <absl/strings/numbers.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "datasets/token_store.h"
#include "eval/ar_drafter.h"
#include "eval/ngram_index.h"
#include "eval/prompt_lookup.h"
#include "eval/speculative.h"

namespace {

using namespace augur;

int Fail(const std::string& msg) {
  std::fprintf(stderr, "spec_tree: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"prompts", "8"}, {"prompt-len", "64"}, {"max-new", "64"},
                                          {"gamma", "4"},   {"threads", "1"}, {"temperature", "0"}};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) return Fail("unexpected argument " + k);
    a[k.substr(2)] = argv[i + 1];
  }
  if (!a.count("target") || !a.count("store"))
    return Fail("usage: spec_tree --target DIR [--drafter DIR] [--datastore FILE.h5] --store FILE.h5 [--prompts N] "
                "[--prompt-len L] [--max-new M] [--gamma G] [--threads T]");
  int64_t n_prompts = 0, prompt_len = 0, max_new = 0, gamma = 0, threads = 1;
  if (!absl::SimpleAtoi(a["prompts"], &n_prompts) || !absl::SimpleAtoi(a["prompt-len"], &prompt_len) ||
      !absl::SimpleAtoi(a["max-new"], &max_new) || !absl::SimpleAtoi(a["gamma"], &gamma) ||
      !absl::SimpleAtoi(a["threads"], &threads))
    return Fail("a numeric flag is not an integer");
  double temperature = 0;
  if (!absl::SimpleAtod(a["temperature"], &temperature)) return Fail("--temperature is not a number");
  torch::set_num_threads(static_cast<int>(threads));
  auto target = LoadCheckpoint(a["target"]);
  if (!target.ok()) return Fail(std::string(target.status().message()));
  auto store = TokenStore::Open(a["store"]);
  if (!store.ok()) return Fail(std::string(store.status().message()));
  // Prompts: the first prompt_len tokens of the first valid documents long enough.
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t doc : (*store)->split_docs(Split::kValid)) {
    if (static_cast<int64_t>(prompts.size()) >= n_prompts) break;
    if ((*store)->doc_length(doc) < prompt_len + max_new) continue;
    std::vector<int64_t> p(prompt_len);
    if (!(*store)->ReadTokens((*store)->doc_offsets()[doc], prompt_len, p.data()).ok()) return Fail("read failed");
    prompts.push_back(p);
  }
  const int64_t capacity = prompt_len + max_new + 80;
  std::vector<std::pair<std::string, std::vector<Drafter*>>> configs;
  std::unique_ptr<ArDrafter> ar;
  std::unique_ptr<NgramDrafter> ngram;
  PromptLookupDrafter pl;
  if (a.count("drafter")) {
    auto d = LoadCheckpoint(a["drafter"]);
    if (!d.ok()) return Fail(std::string(d.status().message()));
    ar = std::make_unique<ArDrafter>(d->model, capacity);
  }
  if (a.count("datastore")) {
    auto index = NgramIndex::Open(a["datastore"]);
    if (!index.ok()) return Fail(std::string(index.status().message()));
    ngram = std::make_unique<NgramDrafter>(*index, NgramDrafter::Options{});
  }
  std::vector<Drafter*> all;
  if (ar) configs.push_back({"ar", {ar.get()}}), all.push_back(ar.get());
  configs.push_back({"prompt-lookup", {&pl}}), all.push_back(&pl);
  if (ngram) configs.push_back({"ngram", {ngram.get()}}), all.push_back(ngram.get());
  struct Row {
    std::string name;
    bool tree, adaptive;
    std::vector<Drafter*> drafters;
  };
  std::vector<Row> rows = {{"target only", false, false, {&pl}}};
  for (auto& [name, ds] : configs) rows.push_back({name, false, false, ds});
  if (ngram) rows.push_back({"tree: lookup + ngram", true, false, {&pl, ngram.get()}});
  if (all.size() > 1) {
    rows.push_back({"tree: all", true, false, all});
    rows.push_back({"tree: all, adaptive", true, true, all});
  }
  std::printf("%d prompts x %lld new tokens, prompt %lld tokens, gamma %lld, %lld thread(s), T=%g\n\n",
              static_cast<int>(prompts.size()), static_cast<long long>(max_new), static_cast<long long>(prompt_len),
              static_cast<long long>(gamma), static_cast<long long>(threads), temperature);
  std::printf("%-22s %6s %6s %8s %9s %8s %7s %6s\n", "drafters", "alpha", "tau", "tok/s", "speedup", "draft%", "ties",
              "exact");
  std::vector<std::vector<int64_t>> reference;
  double base_tps = 0;
  for (const Row& row : rows) {
    SpecOptions so;
    so.gamma = row.name == "target only" ? 0 : gamma;
    so.max_new = max_new;
    so.sampling.temperature = temperature;
    so.seed = 1;
    so.eos_id = -1;
    so.adaptive_gamma = row.adaptive;
    int64_t tokens = 0, forwards = 0, proposed = 0, accepted = 0, ties = 0;
    double total = 0, draft = 0;
    bool exact = true;
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto r = row.tree ? SpeculativeGenerateTree(*target->model, row.drafters, prompts[i], so)
                        : SpeculativeGenerate(*target->model, *row.drafters[0], prompts[i], so);
      if (!r.ok()) return Fail(std::string(r.status().message()));
      if (row.name == "target only") reference.push_back(r->tokens);
      exact = exact && (temperature > 0 || r->tokens == reference[i]);
      tokens += r->tokens.size();
      forwards += r->stats.target_forwards;
      proposed += r->stats.proposed;
      accepted += r->stats.accepted;
      ties += r->stats.near_ties;
      total += r->stats.total_s - r->stats.prefill_s;
      draft += r->stats.draft_s;
    }
    const double tps = tokens / total;
    if (row.name == "target only") base_tps = tps;
    std::printf("%-22s %6.3f %6.2f %8.1f %8.2fx %7.1f%% %7lld %6s\n", row.name.c_str(),
                proposed ? static_cast<double>(accepted) / proposed : 0.0, static_cast<double>(tokens) / forwards, tps,
                tps / base_tps, 100 * draft / total, static_cast<long long>(ties),
                temperature > 0 ? "-" : exact ? "yes" : "NO");
  }
  return 0;
}
