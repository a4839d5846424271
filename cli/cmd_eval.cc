// augur eval / augur bench: load the target, the prompts and each --drafter; per prompt run
// target-only decoding and every (drafter, gamma) through the same speculative engine,
// interleaved so that outside load hits all sides alike; write report.json / report.md.
// eval runs one gamma; bench sweeps --gammas and prints a table.
#include <ATen/Parallel.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_format.h>
#include <absl/strings/str_split.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/drafter_spec.h"
#include "core/checkpoint.h"
#include "core/device.h"
#include "core/progress.h"
#include "core/tokenizer.h"
#include "eval/harness.h"
#include "eval/prompts.h"
#include "eval/report.h"

namespace augur::cli {
namespace {

void DeclareCommon(Args& args, bool bench) {
  args.flag("target", "DIR", "target checkpoint (HF model directory)", "", true)
      .flag("drafter", "SPEC", "drafter to evaluate; repeat for several, each measured separately (kinds below)", "",
            true, true)
      .flag("prompts", "FILE", "prompts: .jsonl with a \"prompt\" text or \"messages\" chat per line, or a token store .h5", "", true)
      .flag("report", "DIR", "write report.json and report.md here", "", !bench);
  if (bench)
    args.flag("gammas", "K,K,...", "draft lengths to sweep", "1,2,4,6,8");
  else
    args.flag("gamma", "K", "draft tokens per verification round", "4");
  args.flag("temperature", "T", "sampling temperature (0 = greedy; output then equals the target's greedy)", "0")
      .flag("top-k", "K", "keep the K most probable tokens, target and drafter alike (0 = off)", "0")
      .flag("top-p", "P", "nucleus filter, target and drafter alike (1 = off)", "1")
      .flag("max-new", "N", "new tokens per prompt (every side generates exactly N unless --stop-at-eos)", "128")
      .flag("num-prompts", "N", "use the first N prompts (0 = all)", bench ? "8" : "0")
      .flag("prompt-len", "P", "token store prompts: the first P tokens of each document", "64")
      .flag("split", "train|valid", "token store prompts: which split", "valid")
      .flag("seed", "S", "sampling seed (prompt i uses S + i, the same for every side)", "0")
      .flag("threads", "N", "CPU threads for LibTorch (0 = its default)", "0")
      .flag("device", "cpu|cuda|auto", "where target and drafters run", "cpu")
      .flag("warmup", "N", "untimed generations of the first prompt per side before measuring", "1")
      .flag("probe-iters", "N", "forwards per size in the forward-cost probe (0 = skip the probe)", "20")
      .flag("tokenizer", "DIR", "tokenizer (default: the target checkpoint's)")
      .flag("chat-template", "NAME", "template for JSONL \"messages\" prompts (default: detected from the target's "
                                     "tokenizer_config.json)")
      .toggle("adaptive-gamma", "choose gamma each round from the running acceptance and the measured drafter/target "
                                "cost (gamma is then the largest allowed)")
      .flag("tree-topk", "K", "drafter sets: also branch on the top-K alternatives of each model drafter's q", "0")
      .toggle("check", "also run target-only greedy decoding (plain loop) and fail naming the first prompt and "
                       "position where a greedy speculative output differs")
      .toggle("stop-at-eos", "stop generations at EOS (lengths may then differ; speedup = ratio of tokens/s)");
  args.note(DrafterSpecHelp());
  args.note("Speedup is wall-clock against target-only decoding on the same engine, prompts and lengths. "
            "report.json holds every figure per prompt and overall, the configuration and the machine; "
            "plot it with scripts/plot_report.py REPORT_DIR.");
}

struct RunConfig {
  size_t drafter = 0;
  int64_t gamma = 0;
};

absl::StatusOr<std::vector<int64_t>> ParseGammas(const std::string& text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t g = 0;
    if (!absl::SimpleAtoi(part, &g) || g < 1)
      return absl::InvalidArgumentError(absl::StrCat("--gammas ", text, ": \"", std::string(part),
                                                     "\" is not an integer >= 1"));
    out.push_back(g);
  }
  if (out.empty()) return absl::InvalidArgumentError("--gammas: empty list");
  return out;
}

int Run(bool bench, int argc, char** argv, int first) {
  const std::string cmd = bench ? "bench" : "eval";
  Args args(cmd,
            bench ? "augur bench: sweep gamma for each drafter with the speculative engine; table + report.json."
                  : "augur eval: measure drafters against a target: acceptance, tau, wall-clock speedup, report.",
            bench ? "augur bench --target DIR --drafter SPEC [--drafter SPEC ...] --prompts FILE [--gammas 1,2,4,6,8] "
                    "[--report DIR]"
                  : "augur eval --target DIR --drafter SPEC [--drafter SPEC ...] --prompts FILE --report DIR "
                    "[--gamma K] [--temperature T] [--max-new N] [--check]");
  DeclareCommon(args, bench);
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  // ---- flags
  auto gammas = ParseGammas(bench ? args.str("gammas") : args.str("gamma"));
  if (!gammas.ok()) return Fail(cmd, bench ? gammas.status() : absl::InvalidArgumentError(absl::StrCat(
                                                                   "--gamma ", args.str("gamma"), ": must be an integer >= 1")));
  auto temperature = args.f64("temperature");
  auto top_k = args.i64("top-k");
  auto top_p = args.f64("top-p");
  auto max_new = args.i64("max-new");
  auto num_prompts = args.i64("num-prompts");
  auto prompt_len = args.i64("prompt-len");
  auto seed = args.i64("seed");
  auto threads = args.i64("threads");
  auto warmup = args.i64("warmup");
  auto probe_iters = args.i64("probe-iters");
  auto tree_topk = args.i64("tree-topk");
  if (!tree_topk.ok()) return Fail(cmd, tree_topk.status());
  for (const absl::Status& st : {temperature.status(), top_k.status(), top_p.status(), max_new.status(),
                                 num_prompts.status(), prompt_len.status(), seed.status(), threads.status(),
                                 warmup.status(), probe_iters.status()})
    if (!st.ok()) return Fail(cmd, st);
  SamplingParams sampling{*temperature, *top_k, *top_p};
  if (auto st = sampling.Validate(); !st.ok()) return Fail(cmd, st);
  if (*max_new < 1) return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("--max-new ", *max_new, ": must be >= 1")));
  if (*num_prompts < 0 || *warmup < 0 || *probe_iters < 0 || *threads < 0)
    return Fail(cmd, absl::InvalidArgumentError("--num-prompts, --warmup, --probe-iters and --threads must be >= 0"));
  if (*threads > 0) at::set_num_threads(static_cast<int>(*threads));
  auto device = ParseDevice(args.str("device"));
  if (!device.ok()) return Fail(cmd, device.status());

  // ---- target, tokenizer, prompts
  auto target = LoadCheckpoint(args.str("target"), *device, torch::kFloat32);
  if (!target.ok()) return Fail(cmd, target.status());
  const ModelConfig& tcfg = target->model->config();
  const std::string tok_path = args.has("tokenizer") ? args.str("tokenizer") : target->tokenizer_model;
  std::unique_ptr<Tokenizer> tokenizer;
  if (!tok_path.empty()) {
    auto tok = Tokenizer::Load(tok_path);
    if (!tok.ok()) return Fail(cmd, tok.status());
    if (!target->meta.tokenizer_fingerprint.empty() && target->meta.tokenizer_fingerprint != tok->fingerprint())
      return Fail(cmd, absl::FailedPreconditionError(absl::StrCat(tok_path, ": not the tokenizer ", args.str("target"),
                                                                  " was trained with")));
    tokenizer = std::make_unique<Tokenizer>(std::move(*tok));
  }
  PromptOptions popts;
  popts.num_prompts = *num_prompts;
  popts.prompt_len = *prompt_len;
  popts.split = args.str("split");
  popts.chat_template = args.str("chat-template");
  auto prompts = LoadPrompts(args.str("prompts"), tokenizer.get(), popts);
  if (!prompts.ok()) return Fail(cmd, prompts.status());
  for (const auto& p : *prompts)
    for (int64_t id : p.ids)
      if (id < 0 || id >= tcfg.vocab_size)
        return Fail(cmd, absl::InvalidArgumentError(absl::StrCat(p.source, ": token id ", id,
                                                                 " is outside the target's vocabulary ", tcfg.vocab_size)));
  int64_t longest = 0;
  for (const auto& p : *prompts) longest = std::max<int64_t>(longest, p.ids.size());
  const int64_t max_gamma = *std::max_element(gammas->begin(), gammas->end());

  // ---- drafters
  DrafterContext dctx;
  dctx.target_config = &tcfg;
  dctx.target_dir = args.str("target");
  dctx.target_tokenizer_fingerprint =
      !target->meta.tokenizer_fingerprint.empty() ? target->meta.tokenizer_fingerprint
                                                  : (tokenizer ? tokenizer->fingerprint() : std::string());
  dctx.device = *device;
  dctx.capacity = longest + *max_new + max_gamma + 1;
  const std::vector<std::string> specs = args.list("drafter");
  std::vector<std::unique_ptr<Drafter>> drafters;
  for (const auto& spec : specs) {
    auto d = MakeDrafter(spec, dctx);
    if (!d.ok()) return Fail(cmd, d.status());
    drafters.push_back(std::move(*d));
  }
  std::vector<RunConfig> configs;
  for (size_t d = 0; d < drafters.size(); ++d)
    for (int64_t g : *gammas) configs.push_back({d, g});

  SpecOptions base_opts;
  base_opts.max_new = *max_new;
  base_opts.sampling = sampling;
  base_opts.adaptive_gamma = args.on("adaptive-gamma");
  base_opts.tree_topk = *tree_topk;
  base_opts.eos_id = args.on("stop-at-eos") ? (tokenizer && tokenizer->eos_id() >= 0 ? tokenizer->eos_id() : -2) : -1;
  const int64_t ref_eos = base_opts.eos_id == -2 ? tcfg.eos_token_id : base_opts.eos_id;
  auto opts_for = [&](int64_t gamma, size_t prompt_index) {
    SpecOptions o = base_opts;
    o.gamma = gamma;
    o.seed = static_cast<uint64_t>(*seed) + prompt_index;
    return o;
  };

  Report report;
  report.command = cmd;
  report.command_line = args.command_line();
  report.config = {{"target", args.str("target")},   {"drafters", specs},
                   {"prompts", args.str("prompts")}, {"gammas", *gammas},
                   {"temperature", *temperature},    {"top_k", *top_k},
                   {"top_p", *top_p},                {"max_new", *max_new},
                   {"num_prompts", *num_prompts},    {"prompt_len", *prompt_len},
                   {"split", args.str("split")},     {"seed", *seed},
                   {"threads", *threads},            {"device", args.str("device")},
                   {"warmup", *warmup},              {"check", args.on("check")},
                   {"stop_at_eos", args.on("stop-at-eos")}, {"report", args.str("report")}};
  report.machine = MachineInfo(AUGUR_VERSION_STRING, device->str());
  report.target = {{"dir", args.str("target")},
                   {"parameters", tcfg.num_parameters()},
                   {"layers", tcfg.num_hidden_layers},
                   {"hidden_size", tcfg.hidden_size},
                   {"vocab_size", tcfg.vocab_size},
                   {"tokenizer_fingerprint", dctx.target_tokenizer_fingerprint}};
  report.baseline = {"target-only", "target-only", 0, sampling.ToString(), {}};
  for (const auto& c : configs)
    report.runs.push_back({specs[c.drafter], drafters[c.drafter]->name(), c.gamma, sampling.ToString(), {}});
  report.check.ran = args.on("check");

  LlamaModelImpl& tm = *target->model;
  NullDrafter null_drafter;
  // Forward cost by tokens per forward: 1 (target-only) and gamma+1 (verification).
  if (*probe_iters > 0) {
    std::vector<int64_t> sizes = {1};
    for (int64_t g : *gammas) sizes.push_back(g + 1);
    report.cost = ProbeForwardCost(tm, prompts->front().ids, sizes, *probe_iters);
  }
  for (int64_t w = 0; w < *warmup; ++w) {
    if (auto r = RunPrompt(tm, null_drafter, prompts->front(), 0, opts_for(0, 0), nullptr); !r.ok())
      return Fail(cmd, r.status());
    for (const auto& c : configs)
      if (auto r = RunPrompt(tm, *drafters[c.drafter], prompts->front(), 0, opts_for(c.gamma, 0), nullptr); !r.ok())
        return Fail(cmd, r.status());
  }

  Progress progress(cmd, static_cast<int64_t>(prompts->size()), "prompts");
  auto mismatch = [&](const std::string& label, int64_t gamma, size_t i, const std::vector<int64_t>& ref,
                      const std::vector<int64_t>& got) {
    const int64_t pos = FirstDifference(ref, got);
    if (pos < 0 || !report.check.passed) return;
    report.check.passed = false;
    report.check.first_mismatch = absl::StrCat(
        label, " (gamma ", gamma, "), prompt ", i, " (", (*prompts)[i].source, "), new-token position ", pos, ": ",
        pos < static_cast<int64_t>(got.size()) ? std::to_string(got[pos]) : "end", " where target-only greedy gives ",
        pos < static_cast<int64_t>(ref.size()) ? std::to_string(ref[pos]) : "end");
  };
  for (size_t i = 0; i < prompts->size(); ++i) {
    const EvalPrompt& p = (*prompts)[i];
    auto base = RunPrompt(tm, null_drafter, p, i, opts_for(0, i), tokenizer.get());
    if (!base.ok()) return Fail(cmd, base.status());
    std::vector<int64_t> ref;
    if (args.on("check")) {
      auto r = ReferenceGreedy(tm, p.ids, *max_new, ref_eos);
      if (!r.ok()) return Fail(cmd, r.status());
      ref = std::move(*r);
      if (sampling.greedy()) mismatch("target-only", 0, i, ref, base->tokens);
    }
    report.baseline.prompts.push_back(std::move(*base));
    for (size_t c = 0; c < configs.size(); ++c) {
      Drafter& d = *drafters[configs[c].drafter];
      auto rec = RunPrompt(tm, d, p, i, opts_for(configs[c].gamma, i), tokenizer.get());
      if (!rec.ok()) return Fail(cmd, rec.status());
      if (args.on("check")) {
        if (sampling.greedy()) {
          mismatch(specs[configs[c].drafter], configs[c].gamma, i, ref, rec->tokens);
        } else {  // the sampled run is exact in distribution only; check its greedy twin
          SpecOptions g = opts_for(configs[c].gamma, i);
          g.sampling = SamplingParams{0.0, 0, 1.0};
          auto greedy = RunPrompt(tm, d, p, i, g, nullptr);
          if (!greedy.ok()) return Fail(cmd, greedy.status());
          mismatch(specs[configs[c].drafter], configs[c].gamma, i, ref, greedy->tokens);
        }
      }
      report.runs[c].prompts.push_back(std::move(*rec));
    }
    const Summary b = Summarize(report.baseline.prompts);
    const Summary s0 = Summarize(report.runs.front().prompts);
    progress.update(static_cast<int64_t>(i + 1),
                    absl::StrCat(report.runs.front().label, " alpha ", absl::StrFormat("%.2f", s0.alpha()), " speedup ",
                                 absl::StrFormat("%.2fx", Speedup(s0, b))));
  }
  progress.finish();

  // ---- table, report
  const Summary b = Summarize(report.baseline.prompts);
  std::printf("%-40s %5s %7s %6s %9s %8s %9s %8s\n", "drafter", "gamma", "alpha", "tau", "tok/s", "speedup", "predicted",
              "overhead");
  std::printf("%-40s %5s %7s %6s %9.1f %8s %9s %7.1f%%\n", "target-only", "-", "-", "1.00", b.tokens_per_s(), "1.00x", "-",
              100 * b.overhead_fraction());
  for (const auto& run : report.runs) {
    const Summary s = Summarize(run.prompts);
    const Prediction pr = Predict(s, b, run.gamma);
    std::printf("%-40s %5lld %7.3f %6.2f %9.1f %7.2fx %8.2fx %7.1f%%\n", run.label.substr(0, 40).c_str(),
                static_cast<long long>(run.gamma), s.alpha(), s.tau(), s.tokens_per_s(), Speedup(s, b), pr.speedup,
                100 * s.overhead_fraction());
  }
  if (args.has("report")) {
    if (auto st = WriteReport(report, args.str("report")); !st.ok()) return Fail(cmd, st);
    std::fprintf(stderr, "augur %s: report in %s/report.json and report.md\n", cmd.c_str(), args.str("report").c_str());
  }
  if (report.check.ran) {
    if (!report.check.passed)
      return Fail(cmd, absl::DataLossError(absl::StrCat("--check failed: ", report.check.first_mismatch)));
    std::fprintf(stderr, "augur %s: --check passed (%zu prompts, every greedy output equals target-only greedy)\n",
                 cmd.c_str(), prompts->size());
  }
  return 0;
}

}  // namespace

int RunEval(int argc, char** argv, int first) { return Run(false, argc, argv, first); }
int RunBench(int argc, char** argv, int first) { return Run(true, argc, argv, first); }

}  // namespace augur::cli
