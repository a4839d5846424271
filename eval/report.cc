#include "eval/report.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <thread>

#include <absl/strings/ascii.h>

#include "core/fs.h"

namespace augur {
namespace {

using json = nlohmann::json;

json StatsJson(const SpecStats& st) {
  return {{"target_forwards", st.target_forwards}, {"proposed", st.proposed},   {"accepted", st.accepted},
          {"offered_at", st.offered_at},           {"accepted_at", st.accepted_at}, {"prefill_s", st.prefill_s},
          {"draft_s", st.draft_s},                 {"verify_s", st.verify_s},   {"total_s", st.total_s},
          // Tree engine, adaptive gamma and the near-tie policy (informational; not read back).
          {"tree_nodes", st.tree_nodes},           {"gamma_used", st.gamma_used},
          {"drafter_accepted", st.drafter_accepted}, {"near_ties", st.near_ties},
          {"near_tie_flips", st.near_tie_flips}};
}

json SummaryJson(const Summary& s) {
  return {{"prompts", s.prompts},
          {"new_tokens", s.new_tokens},
          {"target_forwards", s.target_forwards},
          {"proposed", s.proposed},
          {"accepted", s.accepted},
          {"rounds_with_draft", s.rounds_with_draft},
          {"alpha", s.alpha()},
          {"tau", s.tau()},
          {"offered_at", s.offered_at},
          {"accepted_at", s.accepted_at},
          {"acceptance_by_position", s.acceptance_by_position()},
          {"prefill_s", s.prefill_s},
          {"draft_s", s.draft_s},
          {"verify_s", s.verify_s},
          {"other_s", s.other_s()},
          {"total_s", s.total_s},
          {"overhead_fraction", s.overhead_fraction()},
          {"tokens_per_s", s.tokens_per_s()}};
}

const PromptRecord* FindPrompt(const RunReport& run, int64_t index) {
  for (const auto& p : run.prompts)
    if (p.index == index) return &p;
  return nullptr;
}

json RunJson(const RunReport& run, const RunReport* baseline) {
  const Summary sum = Summarize(run.prompts);
  json j = {{"label", run.label}, {"drafter", run.drafter}, {"spec", run.spec}, {"gamma", run.gamma},
            {"sampling", run.sampling}, {"summary", SummaryJson(sum)}};
  Summary base_sum;
  if (baseline) {
    base_sum = Summarize(baseline->prompts);
    j["speedup"] = Speedup(sum, base_sum);
    const Prediction p = Predict(sum, base_sum, run.gamma);
    j["predicted"] = {{"alpha", p.alpha},
                      {"gamma", p.gamma},
                      {"t_target_1_s", p.t_target_1_s},
                      {"c", p.c},
                      {"v", p.v},
                      {"expected_tokens_per_round", p.expected_tokens},
                      {"speedup", p.speedup}};
  }
  json prompts = json::array();
  for (const auto& r : run.prompts) {
    const Summary s = Summarize(r);
    json pj = {{"index", r.index},       {"source", r.source},     {"prompt_tokens", r.prompt_tokens},
               {"new_tokens", s.new_tokens}, {"tokens", r.tokens}, {"text", r.text},
               {"hit_eos", r.hit_eos},   {"stats", StatsJson(r.stats)}, {"alpha", s.alpha()},
               {"tau", s.tau()},         {"other_s", s.other_s()}, {"tokens_per_s", s.tokens_per_s()}};
    if (baseline) {
      if (const PromptRecord* b = FindPrompt(*baseline, r.index)) pj["speedup"] = Speedup(s, Summarize(*b));
    }
    prompts.push_back(std::move(pj));
  }
  j["prompts"] = std::move(prompts);
  return j;
}

template <typename T>
absl::Status Get(const json& j, const char* key, T* out, const std::string& where) {
  if (!j.is_object() || !j.contains(key))
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing field \"", key, "\""));
  try {
    *out = j.at(key).get<T>();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": field \"", key, "\": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<RunReport> RunFromJson(const json& j, const std::string& where) {
  RunReport run;
  AUGUR_RETURN_IF_ERROR(Get(j, "label", &run.label, where));
  AUGUR_RETURN_IF_ERROR(Get(j, "drafter", &run.drafter, where));
  if (j.contains("spec") && j["spec"].is_string()) run.spec = j["spec"].get<std::string>();
  AUGUR_RETURN_IF_ERROR(Get(j, "gamma", &run.gamma, where));
  AUGUR_RETURN_IF_ERROR(Get(j, "sampling", &run.sampling, where));
  if (!j.contains("prompts") || !j["prompts"].is_array())
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing array \"prompts\""));
  for (size_t i = 0; i < j["prompts"].size(); ++i) {
    const json& pj = j["prompts"][i];
    const std::string pw = absl::StrCat(where, ".prompts[", i, "]");
    PromptRecord r;
    AUGUR_RETURN_IF_ERROR(Get(pj, "index", &r.index, pw));
    AUGUR_RETURN_IF_ERROR(Get(pj, "source", &r.source, pw));
    AUGUR_RETURN_IF_ERROR(Get(pj, "prompt_tokens", &r.prompt_tokens, pw));
    AUGUR_RETURN_IF_ERROR(Get(pj, "tokens", &r.tokens, pw));
    AUGUR_RETURN_IF_ERROR(Get(pj, "text", &r.text, pw));
    AUGUR_RETURN_IF_ERROR(Get(pj, "hit_eos", &r.hit_eos, pw));
    if (!pj.contains("stats")) return absl::InvalidArgumentError(absl::StrCat(pw, ": missing field \"stats\""));
    const json& sj = pj["stats"];
    const std::string sw = pw + ".stats";
    SpecStats& st = r.stats;
    AUGUR_RETURN_IF_ERROR(Get(sj, "target_forwards", &st.target_forwards, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "proposed", &st.proposed, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "accepted", &st.accepted, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "offered_at", &st.offered_at, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "accepted_at", &st.accepted_at, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "prefill_s", &st.prefill_s, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "draft_s", &st.draft_s, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "verify_s", &st.verify_s, sw));
    AUGUR_RETURN_IF_ERROR(Get(sj, "total_s", &st.total_s, sw));
    run.prompts.push_back(std::move(r));
  }
  return run;
}

std::string Fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, x);
  return buf;
}

std::string Pct(double part, double total) { return total > 0 ? Fmt("%.1f%%", 100.0 * part / total) : "-"; }

std::string ReadCpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "unknown";
}

}  // namespace

json MachineInfo(const std::string& augur_version, const std::string& device) {
  return {{"cpu_model", ReadCpuModel()},
          {"cores", static_cast<int64_t>(std::thread::hardware_concurrency())},
          {"torch_threads", static_cast<int64_t>(at::get_num_threads())},
          {"torch_version", TORCH_VERSION},
          {"augur_version", augur_version},
          {"device", device}};
}

json ReportToJson(const Report& report) {
  json runs = json::array();
  for (const auto& r : report.runs) runs.push_back(RunJson(r, &report.baseline));
  return {{"format", kReportFormat},
          {"format_version", kReportVersion},
          {"command", report.command},
          {"command_line", report.command_line},
          {"config", report.config},
          {"machine", report.machine},
          {"target", report.target},
          {"cost", report.cost},
          {"baseline", RunJson(report.baseline, nullptr)},
          {"runs", std::move(runs)},
          {"check", {{"ran", report.check.ran}, {"passed", report.check.passed},
                     {"first_mismatch", report.check.first_mismatch}}}};
}

absl::StatusOr<Report> ReportFromJson(const json& j, const std::string& source) {
  Report r;
  std::string format;
  int64_t version = 0;
  AUGUR_RETURN_IF_ERROR(Get(j, "format", &format, source));
  if (format != kReportFormat)
    return absl::InvalidArgumentError(absl::StrCat(source, ": format \"", format, "\" is not ", kReportFormat));
  AUGUR_RETURN_IF_ERROR(Get(j, "format_version", &version, source));
  if (version != kReportVersion)
    return absl::InvalidArgumentError(absl::StrCat(source, ": format_version ", version, " (this augur reads ",
                                                   kReportVersion, ")"));
  AUGUR_RETURN_IF_ERROR(Get(j, "command", &r.command, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "command_line", &r.command_line, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "config", &r.config, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "machine", &r.machine, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "target", &r.target, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "cost", &r.cost, source));
  if (!j.contains("baseline")) return absl::InvalidArgumentError(absl::StrCat(source, ": missing field \"baseline\""));
  AUGUR_ASSIGN_OR_RETURN(r.baseline, RunFromJson(j["baseline"], source + ".baseline"));
  if (!j.contains("runs") || !j["runs"].is_array())
    return absl::InvalidArgumentError(absl::StrCat(source, ": missing array \"runs\""));
  for (size_t i = 0; i < j["runs"].size(); ++i) {
    AUGUR_ASSIGN_OR_RETURN(RunReport run, RunFromJson(j["runs"][i], absl::StrCat(source, ".runs[", i, "]")));
    r.runs.push_back(std::move(run));
  }
  if (j.contains("check")) {
    AUGUR_RETURN_IF_ERROR(Get(j["check"], "ran", &r.check.ran, source + ".check"));
    AUGUR_RETURN_IF_ERROR(Get(j["check"], "passed", &r.check.passed, source + ".check"));
    AUGUR_RETURN_IF_ERROR(Get(j["check"], "first_mismatch", &r.check.first_mismatch, source + ".check"));
  }
  return r;
}

std::string ReportMarkdown(const Report& report) {
  std::string md = absl::StrCat("# augur ", report.command, " report\n\n");
  const json& c = report.config;
  auto cfg = [&](const char* k) { return c.contains(k) ? (c[k].is_string() ? c[k].get<std::string>() : c[k].dump()) : "-"; };
  const json& m = report.machine;
  auto mach = [&](const char* k) { return m.contains(k) ? (m[k].is_string() ? m[k].get<std::string>() : m[k].dump()) : "-"; };
  const json& tgt = report.target;
  auto tval = [&](const char* k) { return tgt.contains(k) && tgt[k].is_string() ? tgt[k].get<std::string>() : "-"; };
  absl::StrAppend(&md, "- target: `", cfg("target"), "` on the ", tval("engine"), " engine, ", tval("precision"),
                  "\n- prompts: `", cfg("prompts"), "` (", report.baseline.prompts.size(),
                  " prompts, max_new ", cfg("max_new"), ")\n- sampling: ", report.baseline.sampling, ", seed ", cfg("seed"),
                  "\n- machine: ", mach("cpu_model"), ", ", mach("cores"), " cores, ", mach("torch_threads"),
                  " torch threads, device ", mach("device"), ", torch ", mach("torch_version"), ", augur ",
                  mach("augur_version"), "\n- command: `", report.command_line, "`\n\n");

  const Summary base = Summarize(report.baseline.prompts);
  absl::StrAppend(&md, "## Summary\n\nTarget alone (same engine, no drafter): ", Fmt("%.1f", base.tokens_per_s()),
                  " tokens/s, ", base.new_tokens, " tokens in ", Fmt("%.2f", base.total_s), " s.\n\n",
                  "| drafter | gamma | alpha | tau | tokens/s | speedup | predicted | draft | verify | prefill | other |\n",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& run : report.runs) {
    const Summary s = Summarize(run.prompts);
    const Prediction p = Predict(s, base, run.gamma);
    absl::StrAppend(&md, "| ", run.label, " | ", run.gamma, " | ", Fmt("%.3f", s.alpha()), " | ", Fmt("%.2f", s.tau()),
                    " | ", Fmt("%.1f", s.tokens_per_s()), " | ", Fmt("%.2fx", Speedup(s, base)), " | ",
                    Fmt("%.2fx", p.speedup), " | ", Pct(s.draft_s, s.total_s), " | ", Pct(s.verify_s, s.total_s), " | ",
                    Pct(s.prefill_s, s.total_s), " | ", Pct(s.other_s(), s.total_s), " |\n");
  }
  absl::StrAppend(&md, "\ndraft / verify / prefill / other: shares of the run's wall-clock time; other = "
                       "engine overhead outside the timed phases.\n\n## Cost model\n\n",
                  "| drafter | gamma | c = t_draft_step / t_target_1 | v = t_verify / t_target_1 | E[tokens/round] | "
                  "predicted |\n|---|---:|---:|---:|---:|---:|\n");
  for (const auto& run : report.runs) {
    const Prediction p = Predict(Summarize(run.prompts), base, run.gamma);
    absl::StrAppend(&md, "| ", run.label, " | ", run.gamma, " | ", Fmt("%.3f", p.c), " | ", Fmt("%.3f", p.v), " | ",
                    Fmt("%.2f", p.expected_tokens), " | ", Fmt("%.2fx", p.speedup), " |\n");
  }
  absl::StrAppend(&md, "\nt_target_1 = ", Fmt("%.3f", 1e3 * base.verify_s_per_forward()),
                  " ms (one target-only decoding step). Predicted speedup (Leviathan et al. 2023, acceptance "
                  "iid with rate a = alpha): E = (1 - a^(g+1)) / (1 - a), speedup = E / (g c + v). The gap to "
                  "the measured speedup is engine overhead, acceptance that is not iid, drafts shorter than "
                  "gamma, and the last rounds of each generation.\n");
  if (report.cost.contains("forward_ms")) {
    absl::StrAppend(&md, "\nTarget forward on a warm cache (probe, median ms): ");
    for (auto it = report.cost["forward_ms"].begin(); it != report.cost["forward_ms"].end(); ++it)
      absl::StrAppend(&md, "T=", it.key(), ": ", Fmt("%.3f", it.value().get<double>()), " ms; ");
    absl::StrAppend(&md, "\n");
  }

  size_t width = 0;
  for (const auto& run : report.runs) width = std::max(width, Summarize(run.prompts).offered_at.size());
  absl::StrAppend(&md, "\n## Acceptance by draft position\n\nColumn i: accepted_at[i] / offered_at[i], the share of drafts "
                       "offering a token at position i whose tokens 1..i were all kept.\n\n| drafter | gamma |");
  for (size_t i = 0; i < width; ++i) absl::StrAppend(&md, " ", i + 1, " |");
  absl::StrAppend(&md, "\n|---|---:|");
  for (size_t i = 0; i < width; ++i) absl::StrAppend(&md, "---:|");
  absl::StrAppend(&md, "\n");
  for (const auto& run : report.runs) {
    const auto acc = Summarize(run.prompts).acceptance_by_position();
    absl::StrAppend(&md, "| ", run.label, " | ", run.gamma, " |");
    for (size_t i = 0; i < width; ++i) absl::StrAppend(&md, " ", i < acc.size() ? Fmt("%.3f", acc[i]) : "-", " |");
    absl::StrAppend(&md, "\n");
  }

  if (report.check.ran)
    absl::StrAppend(&md, "\n## Check\n\n",
                    report.check.passed ? "Passed: every greedy speculative output equals target-only greedy decoding."
                                        : "FAILED: " + report.check.first_mismatch,
                    "\n");

  absl::StrAppend(&md, "\n## Per prompt\n");
  for (const auto& run : report.runs) {
    absl::StrAppend(&md, "\n### ", run.label, " (gamma ", run.gamma, ")\n\n",
                    "| # | source | prompt | new | alpha | tau | tokens/s | speedup |\n|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : run.prompts) {
      const Summary s = Summarize(r);
      const PromptRecord* b = FindPrompt(report.baseline, r.index);
      absl::StrAppend(&md, "| ", r.index, " | ", r.source, " | ", r.prompt_tokens, " | ", s.new_tokens, " | ",
                      Fmt("%.3f", s.alpha()), " | ", Fmt("%.2f", s.tau()), " | ", Fmt("%.1f", s.tokens_per_s()), " | ",
                      b ? Fmt("%.2fx", Speedup(s, Summarize(*b))) : "-", " |\n");
    }
  }
  return md;
}

absl::Status WriteReport(const Report& report, const std::string& dir) {
  AUGUR_RETURN_IF_ERROR(MakeDirs(dir));
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(dir + "/report.json", ReportToJson(report).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"));
  return WriteFileAtomic(dir + "/report.md", ReportMarkdown(report));
}

}  // namespace augur
