// augur eval / augur bench: flags to an EvalConfig, eval/evaluate.h runs it; print the table,
// write report.json / report.md, fail on a failed --check. eval runs one gamma; bench sweeps
// --gammas.
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
#include "core/device.h"
#include "eval/drafter_registry.h"
#include "eval/evaluate.h"

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
      .flag("threads", "N", "CPU threads, native kernels and LibTorch alike (0 = LibTorch's default)", "0")
      .flag("device", "cpu|cuda|auto", "where target and drafters run", "cpu")
      .flag("target-engine", "native|torch|auto",
            "what runs the target: augur's native engine (fp32/int8/int4, multi-threaded; the CPU default) or "
            "LibTorch (the CUDA path); auto = native on the CPU, torch elsewhere", "auto")
      .flag("target-quant", "SCHEME", "run an fp32 target quantized on load (round-to-nearest, head included): "
                                      "int8, int4-g32, int4-g64, int4-g128; none keeps the checkpoint as saved", "none")
      .flag("probe-sizes", "T,T,...", "also probe the target's forward cost at these tokens per forward "
                                      "(e.g. 1,2,4,8,16 for the verify-cost curve)", "")
      .flag("warmup", "N", "untimed generations of the first prompt per side before measuring", "1")
      .flag("probe-iters", "N", "forwards per size in the forward-cost probe (0 = skip the probe)", "20")
      .flag("tokenizer", "DIR", "tokenizer (default: the target checkpoint's)")
      .flag("chat-template", "NAME", "template for JSONL \"messages\" prompts (default: detected from the target's "
                                     "tokenizer_config.json)")
      .toggle("adaptive-gamma", "choose gamma each round from the running acceptance and the measured drafter/target "
                                "cost (gamma is then the largest allowed)")
      .flag("tree-topk", "K", "drafter sets: also branch on the top-K alternatives of each model drafter's q", "0")
      .toggle("check", "fail naming the first prompt and position where a greedy speculative output differs "
                       "from the same engine's target-only greedy output (sampled runs: their greedy twin)")
      .toggle("stop-at-eos", "stop generations at EOS (lengths may then differ; speedup = ratio of tokens/s)");
  args.note(DrafterSpecHelp());
  args.note("Speedup is wall-clock against target-only decoding on the same engine, prompts and lengths. "
            "report.json holds every figure per prompt and overall, the configuration and the machine; "
            "plot it with scripts/plot_report.py REPORT_DIR.");
}

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
  for (const absl::Status& st : {temperature.status(), top_k.status(), top_p.status(), max_new.status(),
                                 num_prompts.status(), prompt_len.status(), seed.status(), threads.status(),
                                 warmup.status(), probe_iters.status(), tree_topk.status()})
    if (!st.ok()) return Fail(cmd, st);
  if (*num_prompts < 0 || *warmup < 0 || *probe_iters < 0 || *threads < 0)
    return Fail(cmd, absl::InvalidArgumentError("--num-prompts, --warmup, --probe-iters and --threads must be >= 0"));
  std::vector<int64_t> probe_sizes;
  for (absl::string_view part : absl::StrSplit(args.str("probe-sizes"), ',', absl::SkipEmpty())) {
    int64_t t = 0;
    if (!absl::SimpleAtoi(part, &t) || t < 1 || t > 256)
      return Fail(cmd, absl::InvalidArgumentError(absl::StrCat("--probe-sizes ", args.str("probe-sizes"), ": \"",
                                                               std::string(part), "\" is not an integer in [1, 256]")));
    probe_sizes.push_back(t);
  }
  if (*threads > 0) at::set_num_threads(static_cast<int>(*threads));
  auto device = ParseDevice(args.str("device"));
  if (!device.ok()) return Fail(cmd, device.status());

  EvalConfig cfg;
  cfg.command = cmd;
  cfg.command_line = args.command_line();
  cfg.augur_version = AUGUR_VERSION_STRING;
  cfg.target.dir = args.str("target");
  cfg.target.engine = args.str("target-engine");
  cfg.target.quant = args.str("target-quant");
  cfg.target.device = *device;
  cfg.drafters = args.list("drafter");
  cfg.prompts = args.str("prompts");
  cfg.prompt_options.num_prompts = *num_prompts;
  cfg.prompt_options.prompt_len = *prompt_len;
  cfg.prompt_options.split = args.str("split");
  cfg.prompt_options.chat_template = args.str("chat-template");
  cfg.tokenizer = args.has("tokenizer") ? args.str("tokenizer") : "";
  cfg.gammas = *gammas;
  cfg.sampling = SamplingParams{*temperature, *top_k, *top_p};
  cfg.max_new = *max_new;
  cfg.seed = static_cast<uint64_t>(*seed);
  cfg.warmup = *warmup;
  cfg.probe_iters = *probe_iters;
  cfg.probe_sizes = probe_sizes;
  cfg.adaptive_gamma = args.on("adaptive-gamma");
  cfg.tree_topk = *tree_topk;
  cfg.check = args.on("check");
  cfg.stop_at_eos = args.on("stop-at-eos");
  cfg.config = {{"target", args.str("target")},   {"drafters", cfg.drafters},
                {"prompts", args.str("prompts")}, {"gammas", *gammas},
                {"temperature", *temperature},    {"top_k", *top_k},
                {"top_p", *top_p},                {"max_new", *max_new},
                {"num_prompts", *num_prompts},    {"prompt_len", *prompt_len},
                {"split", args.str("split")},     {"seed", *seed},
                {"threads", *threads},            {"device", args.str("device")},
                {"target_engine", cfg.target.engine}, {"target_quant", cfg.target.quant},
                {"warmup", *warmup},              {"check", cfg.check},
                {"stop_at_eos", cfg.stop_at_eos}, {"report", args.str("report")}};
  auto report = Evaluate(cfg);
  if (!report.ok()) return Fail(cmd, report.status());

  std::fprintf(stderr, "augur %s: target %s on the %s engine (%s)\n", cmd.c_str(), cfg.target.dir.c_str(),
               report->target.value("engine", std::string()).c_str(),
               report->target.value("precision", std::string()).c_str());
  std::printf("%s", SummaryTable(*report).c_str());
  if (args.has("report")) {
    if (auto st = WriteReport(*report, args.str("report")); !st.ok()) return Fail(cmd, st);
    std::fprintf(stderr, "augur %s: report in %s/report.json and report.md\n", cmd.c_str(), args.str("report").c_str());
  }
  if (report->check.ran) {
    if (!report->check.passed)
      return Fail(cmd, absl::DataLossError(absl::StrCat("--check failed: ", report->check.first_mismatch)));
    std::fprintf(stderr, "augur %s: --check passed (%zu prompts, every greedy output equals target-only greedy)\n",
                 cmd.c_str(), report->baseline.prompts.size());
  }
  return 0;
}

}  // namespace

int RunEval(int argc, char** argv, int first) { return Run(false, argc, argv, first); }
int RunBench(int argc, char** argv, int first) { return Run(true, argc, argv, first); }

}  // namespace augur::cli
