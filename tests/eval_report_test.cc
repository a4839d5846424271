// Evaluation figures: aggregation against hand-computed values, the predicted-speedup
// formula, report.json round trip, and the harness's target-only run on a real tiny model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>

#include "core/fs.h"
#include "core/model.h"
#include "eval/harness.h"
#include "runtime/native_llama.h"
#include "eval/metrics.h"
#include "eval/prompt_lookup.h"
#include "eval/report.h"

namespace augur {
namespace {

PromptRecord Record(int64_t index, int64_t new_tokens, int64_t forwards, int64_t proposed, int64_t accepted,
                    std::vector<int64_t> offered_at, std::vector<int64_t> accepted_at, double prefill, double draft,
                    double verify, double total) {
  PromptRecord r;
  r.index = index;
  r.source = "p" + std::to_string(index);
  r.prompt_tokens = 10 + index;
  for (int64_t i = 0; i < new_tokens; ++i) r.tokens.push_back(100 + i);
  r.text = "text " + std::to_string(index);
  r.stats.target_forwards = forwards;
  r.stats.proposed = proposed;
  r.stats.accepted = accepted;
  r.stats.offered_at = std::move(offered_at);
  r.stats.accepted_at = std::move(accepted_at);
  r.stats.prefill_s = prefill;
  r.stats.draft_s = draft;
  r.stats.verify_s = verify;
  r.stats.total_s = total;
  return r;
}

// Two generations of 20 and 12 tokens at gamma 3.
std::vector<PromptRecord> TwoRecords() {
  return {Record(0, 20, 8, 24, 12, {8, 8, 8}, {6, 4, 2}, 0.010, 0.040, 0.080, 0.140),
          Record(1, 12, 6, 15, 6, {6, 5, 4}, {3, 2, 1}, 0.005, 0.020, 0.060, 0.090)};
}

TEST(Metrics, AggregatesHandComputed) {
  const Summary s = Summarize(TwoRecords());
  EXPECT_EQ(s.prompts, 2);
  EXPECT_EQ(s.new_tokens, 32);
  EXPECT_EQ(s.target_forwards, 14);
  EXPECT_EQ(s.proposed, 39);
  EXPECT_EQ(s.accepted, 18);
  EXPECT_EQ(s.rounds_with_draft, 14);
  EXPECT_EQ(s.offered_at, (std::vector<int64_t>{14, 13, 12}));
  EXPECT_EQ(s.accepted_at, (std::vector<int64_t>{9, 6, 3}));
  EXPECT_DOUBLE_EQ(s.alpha(), 18.0 / 39.0);
  EXPECT_DOUBLE_EQ(s.tau(), 32.0 / 14.0);
  const auto acc = s.acceptance_by_position();
  ASSERT_EQ(acc.size(), 3u);
  EXPECT_DOUBLE_EQ(acc[0], 9.0 / 14.0);
  EXPECT_DOUBLE_EQ(acc[1], 6.0 / 13.0);
  EXPECT_DOUBLE_EQ(acc[2], 3.0 / 12.0);
  EXPECT_NEAR(s.total_s, 0.230, 1e-12);
  EXPECT_NEAR(s.other_s(), 0.230 - 0.015 - 0.060 - 0.140, 1e-12);  // 0.015
  EXPECT_NEAR(s.overhead_fraction(), 0.015 / 0.230, 1e-12);
  EXPECT_NEAR(s.tokens_per_s(), 32 / 0.230, 1e-9);
  EXPECT_NEAR(s.verify_s_per_forward(), 0.140 / 14, 1e-12);
  EXPECT_NEAR(s.draft_s_per_round(), 0.060 / 14, 1e-12);
  // Per prompt.
  const Summary one = Summarize(TwoRecords()[1]);
  EXPECT_DOUBLE_EQ(one.alpha(), 0.4);
  EXPECT_DOUBLE_EQ(one.tau(), 2.0);
  // Position never offered: acceptance 0, not NaN.
  Summary empty;
  empty.offered_at = {0};
  empty.accepted_at = {0};
  EXPECT_EQ(empty.acceptance_by_position()[0], 0.0);
  EXPECT_EQ(empty.alpha(), 0.0);
  EXPECT_EQ(empty.tau(), 0.0);
}

TEST(Metrics, PredictedSpeedupFormula) {
  // (1 - a^(g+1)) / (1 - a)
  EXPECT_NEAR(ExpectedTokensPerRound(0.5, 4), (1 - 0.03125) / 0.5, 1e-12);  // 1.9375
  EXPECT_DOUBLE_EQ(ExpectedTokensPerRound(1.0, 4), 5.0);
  EXPECT_DOUBLE_EQ(ExpectedTokensPerRound(0.0, 4), 1.0);
  EXPECT_NEAR(ExpectedTokensPerRound(0.999999, 3), 4.0, 1e-4);  // continuous at a = 1
  // E / (g c + v): a = 0.8, g = 4, c = 0.1, v = 1.3 -> 3.3616 / 1.7
  EXPECT_NEAR(PredictedSpeedup(0.8, 4, 0.1, 1.3), 3.3616 / 1.7, 1e-12);
  // Free drafting and free verification of g+1 tokens: speedup = E.
  EXPECT_NEAR(PredictedSpeedup(0.7, 3, 0.0, 1.0), (1 - std::pow(0.7, 4)) / 0.3, 1e-12);
}

TEST(Metrics, PredictAndSpeedupFromRuns) {
  const Summary spec = Summarize(TwoRecords());
  // Baseline: 32 tokens, 32 one-token forwards, 0.002 s each.
  PromptRecord b = Record(0, 32, 32, 0, 0, {0}, {0}, 0.015, 0.0, 0.064, 0.090);
  const Summary base = Summarize(b);
  const Prediction p = Predict(spec, base, 3);
  EXPECT_NEAR(p.t_target_1_s, 0.002, 1e-12);
  EXPECT_NEAR(p.c, (0.060 / 14) / 3 / 0.002, 1e-9);
  EXPECT_NEAR(p.v, (0.140 / 14) / 0.002, 1e-9);  // 5.0
  EXPECT_NEAR(p.expected_tokens, ExpectedTokensPerRound(18.0 / 39.0, 3), 1e-12);
  EXPECT_NEAR(p.speedup, p.expected_tokens / (3 * p.c + p.v), 1e-12);
  // Equal lengths: the tokens/s ratio is the time ratio.
  EXPECT_NEAR(Speedup(spec, base), 0.090 / 0.230, 1e-12);
}

Report SampleReport() {
  Report r;
  r.command = "eval";
  r.command_line = "augur eval --target t --drafter prompt-lookup";
  r.config = {{"target", "t"}, {"gammas", {3}}, {"max_new", 32}};
  r.machine = MachineInfo("0.1.0", "cpu");
  r.target = {{"dir", "t"}, {"parameters", 1234}};
  r.cost = {{"forward_ms", {{"1", 2.0}, {"4", 2.5}}}, {"iters", 5}, {"context", 10}};
  r.baseline = {"target-only", "target-only", 0, "greedy", {}};
  r.baseline.prompts = {Record(0, 20, 20, 0, 0, {0}, {0}, 0.010, 0.0, 0.100, 0.120),
                        Record(1, 12, 12, 0, 0, {0}, {0}, 0.005, 0.0, 0.060, 0.070)};
  r.runs.push_back({"prompt-lookup", "prompt-lookup", 3, "greedy", TwoRecords()});
  r.check.ran = true;
  r.check.passed = false;
  r.check.first_mismatch = "prompt-lookup (gamma 3), prompt 1, position 4";
  return r;
}

TEST(Report, JsonRoundTripAndDerivedFields) {
  const Report r = SampleReport();
  const std::string dir = MakeTempDir("augur_report_");
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(WriteReport(r, dir + "/out").ok());
  auto text = ReadFile(dir + "/out/report.json");
  ASSERT_TRUE(text.ok()) << text.status();
  const auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["format"], kReportFormat);
  EXPECT_EQ(j["machine"]["torch_version"].get<std::string>().substr(0, 2), "2.");
  EXPECT_GE(j["machine"]["cores"].get<int64_t>(), 1);
  const auto& run = j["runs"][0];
  EXPECT_DOUBLE_EQ(run["summary"]["alpha"].get<double>(), 18.0 / 39.0);
  EXPECT_DOUBLE_EQ(run["summary"]["tau"].get<double>(), 32.0 / 14.0);
  EXPECT_NEAR(run["speedup"].get<double>(), 0.190 / 0.230, 1e-12);
  EXPECT_NEAR(run["prompts"][1]["speedup"].get<double>(), 0.070 / 0.090, 1e-12);
  EXPECT_NEAR(run["predicted"]["t_target_1_s"].get<double>(), 0.160 / 32, 1e-12);
  EXPECT_EQ(run["prompts"][0]["tokens"].size(), 20u);
  EXPECT_EQ(run["prompts"][0]["text"], "text 0");

  auto back = ReportFromJson(j, "report.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->command_line, r.command_line);
  EXPECT_EQ(back->config, r.config);
  EXPECT_EQ(back->cost, r.cost);
  ASSERT_EQ(back->runs.size(), 1u);
  ASSERT_EQ(back->runs[0].prompts.size(), 2u);
  const PromptRecord& p = back->runs[0].prompts[1];
  EXPECT_EQ(p.tokens, r.runs[0].prompts[1].tokens);
  EXPECT_EQ(p.source, "p1");
  EXPECT_EQ(p.stats.offered_at, (std::vector<int64_t>{6, 5, 4}));
  EXPECT_DOUBLE_EQ(p.stats.verify_s, 0.060);
  EXPECT_EQ(back->runs[0].gamma, 3);
  EXPECT_FALSE(back->check.passed);
  EXPECT_EQ(back->check.first_mismatch, r.check.first_mismatch);
  // Writing it again gives the same JSON.
  EXPECT_EQ(ReportToJson(*back), j);

  auto md = ReadFile(dir + "/out/report.md");
  ASSERT_TRUE(md.ok());
  EXPECT_NE(md->find("| prompt-lookup | 3 | 0.462 | 2.29 |"), std::string::npos) << *md;
  EXPECT_NE(md->find("FAILED: prompt-lookup (gamma 3)"), std::string::npos);
  EXPECT_FALSE(FileExists(dir + "/out/report.json.tmp." + std::to_string(getpid())));

  auto bad = j;
  bad["format"] = "other";
  EXPECT_FALSE(ReportFromJson(bad, "x.json").ok());
  bad = j;
  bad["runs"][0]["prompts"][0].erase("stats");
  auto st = ReportFromJson(bad, "x.json");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(std::string(st.status().message()).find("x.json.runs[0].prompts[0]: missing field \"stats\""),
            std::string::npos)
      << st.status();
  RemoveTree(dir);
}

TEST(Harness, FirstDifference) {
  EXPECT_EQ(FirstDifference({1, 2, 3}, {1, 2, 3}), -1);
  EXPECT_EQ(FirstDifference({1, 2, 3}, {1, 5, 3}), 1);
  EXPECT_EQ(FirstDifference({1, 2, 3}, {1, 2}), 2);
  EXPECT_EQ(FirstDifference({}, {}), -1);
}

TEST(Harness, TargetOnlyAndPromptLookupOnTinyModel) {
  ModelConfig c;
  c.vocab_size = 53;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  LlamaModel m(c);
  m->init_weights(3);
  EvalPrompt prompt{"tiny", {1, 5, 7, 9, 5, 7, 9, 5, 7}, ""};
  SpecOptions o;
  o.max_new = 24;
  o.sampling.temperature = 0;
  o.eos_id = -1;
  o.gamma = 0;
  auto ref = ReferenceGreedy(*m, prompt.ids, 24, -1);
  ASSERT_TRUE(ref.ok());
  auto native = NativeLlama::Create(m, 64);
  ASSERT_TRUE(native.ok()) << native.status();
  TorchDecodeModel torch_target(m, 64);
  for (DecodeModel* target : {static_cast<DecodeModel*>(&torch_target), static_cast<DecodeModel*>(native->get())}) {
    SCOPED_TRACE(target->engine());
    NullDrafter null_drafter;
    o.gamma = 0;
    auto base = RunPrompt(*target, null_drafter, prompt, 0, o, nullptr);
    ASSERT_TRUE(base.ok()) << base.status();
    EXPECT_EQ(base->tokens.size(), 24u);
    // One target forward per new token: tau exactly 1, nothing proposed.
    EXPECT_EQ(base->stats.target_forwards, 24);
    EXPECT_EQ(base->stats.proposed, 0);
    EXPECT_DOUBLE_EQ(Summarize(*base).tau(), 1.0);
    // The tiny model has no near ties: both engines decode as the plain LibTorch loop.
    EXPECT_EQ(FirstDifference(*ref, base->tokens), -1);

    PromptLookupDrafter pl;
    o.gamma = 4;
    auto spec = RunPrompt(*target, pl, prompt, 0, o, nullptr);
    ASSERT_TRUE(spec.ok()) << spec.status();
    EXPECT_EQ(FirstDifference(base->tokens, spec->tokens), -1);
    const Summary s = Summarize(*spec);
    EXPECT_GT(s.proposed, 0);  // the prompt repeats "5 7 9": lookup always finds a match
    EXPECT_LE(s.target_forwards, 24);
    EXPECT_DOUBLE_EQ(s.tau(), 24.0 / s.target_forwards);
    EXPECT_EQ(s.accepted + s.target_forwards, 24);  // each round keeps accepted + 1 token
    if (target->rows_exact()) {
      EXPECT_EQ(spec->stats.near_ties, 0);
    }

    const auto cost = ProbeForwardCost(*target, prompt.ids, {1, 5}, 3);
    EXPECT_GT(cost["forward_ms"]["1"].get<double>(), 0.0);
    EXPECT_GT(cost["forward_ms"]["5"].get<double>(), 0.0);
    EXPECT_EQ(target->length(), 0);  // the probe leaves the cache empty
  }
}

}  // namespace
}  // namespace augur
