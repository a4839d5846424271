#include "eval/evaluate.h"

#include <absl/strings/str_format.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "core/progress.h"
#include "core/tokenizer.h"
#include "eval/drafter_registry.h"
#include "eval/harness.h"

namespace augur {
namespace {

struct RunConfig {
  size_t drafter = 0;
  int64_t gamma = 0;
};

}  // namespace

absl::StatusOr<Report> Evaluate(const EvalConfig& cfg) {
  if (cfg.gammas.empty()) return absl::InvalidArgumentError(absl::StrCat(cfg.command, ": no gamma to run"));
  if (cfg.drafters.empty()) return absl::InvalidArgumentError(absl::StrCat(cfg.command, ": no --drafter to evaluate"));
  AUGUR_RETURN_IF_ERROR(cfg.sampling.Validate());
  if (cfg.max_new < 1) return absl::InvalidArgumentError(absl::StrCat("--max-new ", cfg.max_new, ": must be >= 1"));

  // ---- tokenizer and prompts first (their lengths size the target's cache)
  // The checkpoint's tokenizer file without loading the model: the loader's own rule.
  const std::string tok_path = !cfg.tokenizer.empty() ? cfg.tokenizer : FindTokenizerFile(cfg.target.dir);
  std::unique_ptr<Tokenizer> tokenizer;
  if (!tok_path.empty()) {
    AUGUR_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::Load(tok_path));
    tokenizer = std::make_unique<Tokenizer>(std::move(tok));
  }
  AUGUR_ASSIGN_OR_RETURN(std::vector<EvalPrompt> prompts,
                         LoadPrompts(cfg.prompts, tokenizer.get(), cfg.prompt_options));
  if (prompts.empty()) return absl::InvalidArgumentError(absl::StrCat(cfg.prompts, ": no prompts"));
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, p.ids.size());
  const int64_t max_gamma = *std::max_element(cfg.gammas.begin(), cfg.gammas.end());

  SpecOptions base_opts;
  base_opts.max_new = cfg.max_new;
  base_opts.sampling = cfg.sampling;
  base_opts.adaptive_gamma = cfg.adaptive_gamma;
  base_opts.tree_topk = cfg.tree_topk;
  SpecOptions sizing = base_opts;
  sizing.gamma = max_gamma;
  bool any_set = false;
  for (const auto& s : cfg.drafters) any_set = any_set || DrafterSpecIsTree(s);
  if (!any_set) sizing.tree_max_nodes = 0;

  // ---- target
  TargetOptions topts = cfg.target;
  topts.capacity = SpecCapacity(longest, sizing);
  for (int64_t t : cfg.probe_sizes) topts.capacity = std::max(topts.capacity, longest + t);
  AUGUR_ASSIGN_OR_RETURN(LoadedTarget target, LoadTarget(topts));
  const ModelConfig& tcfg = target.config;
  if (tokenizer && !target.meta.tokenizer_fingerprint.empty() &&
      target.meta.tokenizer_fingerprint != tokenizer->fingerprint())
    return absl::FailedPreconditionError(
        absl::StrCat(tok_path, ": not the tokenizer ", cfg.target.dir, " was trained with"));
  for (const auto& p : prompts)
    for (int64_t id : p.ids)
      if (id < 0 || id >= tcfg.vocab_size)
        return absl::InvalidArgumentError(
            absl::StrCat(p.source, ": token id ", id, " is outside the target's vocabulary ", tcfg.vocab_size));

  // ---- drafters
  DrafterContext dctx;
  dctx.target_config = &tcfg;
  dctx.target_dir = cfg.target.dir;
  dctx.target_tokenizer_fingerprint = !target.meta.tokenizer_fingerprint.empty()
                                          ? target.meta.tokenizer_fingerprint
                                          : (tokenizer ? tokenizer->fingerprint() : std::string());
  dctx.device = cfg.target.device;
  dctx.capacity = longest + cfg.max_new + max_gamma + 1;
  std::vector<std::unique_ptr<Drafter>> drafters;
  for (const auto& spec : cfg.drafters) {
    AUGUR_ASSIGN_OR_RETURN(std::unique_ptr<Drafter> d, MakeDrafter(spec, dctx));
    drafters.push_back(std::move(d));
  }
  std::vector<RunConfig> configs;
  for (size_t d = 0; d < drafters.size(); ++d)
    for (int64_t g : cfg.gammas) configs.push_back({d, g});

  base_opts.eos_id = cfg.stop_at_eos ? (tokenizer && tokenizer->eos_id() >= 0 ? tokenizer->eos_id() : -2) : -1;
  auto opts_for = [&](int64_t gamma, size_t prompt_index) {
    SpecOptions o = base_opts;
    o.gamma = gamma;
    o.seed = cfg.seed + prompt_index;
    return o;
  };

  Report report;
  report.command = cfg.command;
  report.command_line = cfg.command_line;
  report.config = cfg.config;
  report.machine = MachineInfo(cfg.augur_version, cfg.target.device.str());
  report.target = {{"dir", cfg.target.dir},
                   {"engine", target.engine},
                   {"precision", target.precision},
                   {"parameters", tcfg.num_parameters()},
                   {"layers", tcfg.num_hidden_layers},
                   {"hidden_size", tcfg.hidden_size},
                   {"vocab_size", tcfg.vocab_size},
                   {"tokenizer_fingerprint", dctx.target_tokenizer_fingerprint}};
  report.baseline = {"target-only", "target-only", 0, cfg.sampling.ToString(), {}};
  for (const auto& c : configs)
    report.runs.push_back({drafters[c.drafter]->name(), drafters[c.drafter]->name(), c.gamma,
                           cfg.sampling.ToString(), {}, cfg.drafters[c.drafter]});
  report.check.ran = cfg.check;

  DecodeModel& tm = *target.model;
  NullDrafter null_drafter;
  // Forward cost by tokens per forward: 1 (target-only), gamma+1 (verification) and any asked.
  if (cfg.probe_iters > 0) {
    std::vector<int64_t> sizes = {1};
    for (int64_t g : cfg.gammas) sizes.push_back(g + 1);
    sizes.insert(sizes.end(), cfg.probe_sizes.begin(), cfg.probe_sizes.end());
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    report.cost = ProbeForwardCost(tm, prompts.front().ids, sizes, cfg.probe_iters);
  }
  for (int64_t w = 0; w < cfg.warmup; ++w) {
    AUGUR_RETURN_IF_ERROR(RunPrompt(tm, null_drafter, prompts.front(), 0, opts_for(0, 0), nullptr).status());
    for (const auto& c : configs)
      AUGUR_RETURN_IF_ERROR(
          RunPrompt(tm, *drafters[c.drafter], prompts.front(), 0, opts_for(c.gamma, 0), nullptr).status());
  }

  Progress progress(cfg.command, static_cast<int64_t>(prompts.size()), "prompts");
  auto mismatch = [&](const std::string& label, int64_t gamma, size_t i, const std::vector<int64_t>& ref,
                      const std::vector<int64_t>& got) {
    const int64_t pos = FirstDifference(ref, got);
    if (pos < 0 || !report.check.passed) return;
    report.check.passed = false;
    report.check.first_mismatch = absl::StrCat(
        label, " (gamma ", gamma, "), prompt ", i, " (", prompts[i].source, "), new-token position ", pos, ": ",
        pos < static_cast<int64_t>(got.size()) ? std::to_string(got[pos]) : "end",
        " where target-only greedy on the same engine gives ",
        pos < static_cast<int64_t>(ref.size()) ? std::to_string(ref[pos]) : "end");
  };
  for (size_t i = 0; i < prompts.size(); ++i) {
    const EvalPrompt& p = prompts[i];
    AUGUR_ASSIGN_OR_RETURN(PromptRecord base, RunPrompt(tm, null_drafter, p, i, opts_for(0, i), tokenizer.get()));
    // The reference of --check: the engine's own target-only greedy decoding (gamma 0).
    std::vector<int64_t> ref;
    if (cfg.check) {
      if (cfg.sampling.greedy()) {
        ref = base.tokens;
      } else {
        SpecOptions g = opts_for(0, i);
        g.sampling = SamplingParams{0.0, 0, 1.0};
        AUGUR_ASSIGN_OR_RETURN(PromptRecord greedy, RunPrompt(tm, null_drafter, p, i, g, nullptr));
        ref = std::move(greedy.tokens);
      }
    }
    report.baseline.prompts.push_back(std::move(base));
    for (size_t c = 0; c < configs.size(); ++c) {
      Drafter& d = *drafters[configs[c].drafter];
      const std::string& label = report.runs[c].label;
      AUGUR_ASSIGN_OR_RETURN(PromptRecord rec, RunPrompt(tm, d, p, i, opts_for(configs[c].gamma, i), tokenizer.get()));
      if (cfg.check) {
        if (cfg.sampling.greedy()) {
          mismatch(label, configs[c].gamma, i, ref, rec.tokens);
        } else {  // the sampled run is exact in distribution only; check its greedy twin
          SpecOptions g = opts_for(configs[c].gamma, i);
          g.sampling = SamplingParams{0.0, 0, 1.0};
          AUGUR_ASSIGN_OR_RETURN(PromptRecord greedy, RunPrompt(tm, d, p, i, g, nullptr));
          mismatch(label, configs[c].gamma, i, ref, greedy.tokens);
        }
      }
      report.runs[c].prompts.push_back(std::move(rec));
    }
    if (cfg.progress) {
      const Summary b = Summarize(report.baseline.prompts);
      const Summary s0 = Summarize(report.runs.front().prompts);
      progress.update(static_cast<int64_t>(i + 1),
                      absl::StrCat(report.runs.front().label, " alpha ", absl::StrFormat("%.2f", s0.alpha()),
                                   " speedup ", absl::StrFormat("%.2fx", Speedup(s0, b))));
    }
  }
  if (cfg.progress) progress.finish();
  return report;
}

std::string SummaryTable(const Report& report) {
  std::string out;
  const Summary b = Summarize(report.baseline.prompts);
  absl::StrAppendFormat(&out, "%-40s %5s %7s %6s %9s %8s %9s %8s\n", "drafter", "gamma", "alpha", "tau", "tok/s",
                        "speedup", "predicted", "overhead");
  absl::StrAppendFormat(&out, "%-40s %5s %7s %6s %9.1f %8s %9s %7.1f%%\n", "target-only", "-", "-", "1.00",
                        b.tokens_per_s(), "1.00x", "-", 100 * b.overhead_fraction());
  for (const auto& run : report.runs) {
    const Summary s = Summarize(run.prompts);
    const Prediction pr = Predict(s, b, run.gamma);
    absl::StrAppendFormat(&out, "%-40s %5d %7.3f %6.2f %9.1f %7.2fx %8.2fx %7.1f%%\n", run.label.substr(0, 40),
                          run.gamma, s.alpha(), s.tau(), s.tokens_per_s(), Speedup(s, b), pr.speedup,
                          100 * s.overhead_fraction());
  }
  return out;
}

}  // namespace augur
