// NAT distillation on a tiny random target: batches point every slot at the right teacher
// row (checked against the target itself), held-out contexts are the drafting ones, and a
// short run raises the held-out per-offset acceptance and writes a loadable nat-drafter.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <absl/strings/str_split.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/fs.h"
#include "distill/nat_data.h"
#include "distill/nat_distill.h"
#include "distill/teacher_gen.h"
#include "eval/nat_drafter.h"
#include "eval/speculative.h"
#include "tests/nat_test_util.h"

namespace augur {
namespace {

using nattest::Random;
using nattest::Tiny;
constexpr int64_t kMask = 4;

class NatDistill : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(1);
    root_ = MakeTempDir("augur_natd_");
    // A peaky random target (scale 3) and its greedy continuations of random prompts.
    target_ = Random(Tiny(2, 32), 1, 3.0);
    {
      // Peakier output (logit std ~4 instead of ~1): a near-uniform student then starts
      // with a low acceptance that distillation can visibly raise.
      torch::NoGradGuard g;
      target_->model->norm->weight.mul_(4.0);
    }
    ASSERT_TRUE(SaveCheckpoint(target_, AugurMeta{}, root_ + "/target").ok());
    distill::PromptSet prompts;
    prompts.source = "test";
    prompts.vocab_size = 61;
    uint64_t x = 12345;
    for (int64_t i = 0; i < 48; ++i) {
      distill::TeacherPrompt p;
      p.index = i;
      for (int j = 0; j < 6; ++j) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        p.tokens.push_back(5 + static_cast<int64_t>((x >> 33) % 56));
      }
      prompts.prompts.push_back(p);
    }
    distill::TeacherGenOptions go;
    go.top_k = 16;
    go.max_new = 26;
    go.batch = 16;
    go.eos_id = -1;
    go.progress = false;
    auto fp = CheckpointFingerprint(root_ + "/target");
    ASSERT_TRUE(fp.ok()) << fp.status();
    go.target_fingerprint = *fp;
    auto sum = distill::GenerateTeacherData(*target_, prompts, root_ + "/teacher.h5", go);
    ASSERT_TRUE(sum.ok()) << sum.status();
  }
  static void TearDownTestSuite() { RemoveTree(root_); }

  distill::NatDistillOptions Options(const std::string& out) const {
    distill::NatDistillOptions o;
    o.target = root_ + "/target";
    o.teacher = root_ + "/teacher.h5";
    o.gamma = 3;
    o.mask_id = kMask;
    o.groups_per_seq = 6;
    o.eval_sequences = 8;
    o.train.out_dir = out;
    o.train.steps = 60;
    o.train.batch = 8;
    o.train.seq_len = 32;
    o.train.lr = 1e-2;
    o.train.warmup = 5;
    o.train.eval_every = 0;
    o.train.save_every = 0;
    o.train.progress = false;
    return o;
  }

  static std::string root_;
  static LlamaModel target_;
};
std::string NatDistill::root_;
LlamaModel NatDistill::target_{nullptr};

TEST_F(NatDistill, BatchesPointAtTheRightTeacherRows) {
  torch::NoGradGuard g;
  auto store = TeacherStore::Open(root_ + "/teacher.h5");
  ASSERT_TRUE(store.ok()) << store.status();
  distill::NatDataOptions o;
  o.gamma = 3;
  o.mask_id = kMask;
  o.seq_len = 20;  // shorter than the sequences (32): windows start anywhere
  o.groups_per_seq = 5;
  o.eval_sequences = 8;
  auto data = distill::NatTeacherData::Open(*store, o);
  ASSERT_TRUE(data.ok()) << data.status();
  auto b = data->TrainBatch(7, 4);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ids.size(1), data->packed_len());
  EXPECT_EQ(data->packed_len(), 20 + 5 * 2);
  auto again = data->TrainBatch(7, 4);  // a batch is a function of its index
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(torch::equal(b->ids, again->ids));
  EXPECT_TRUE(torch::equal(b->pred_row, again->pred_row));
  // Each slot's teacher row is the target's distribution at that row of the full sequence
  // (the window [5, 25) of sequence 3 here): the stored top-1 is the argmax of the target's
  // own logits there and its log-prob matches (stored as float16).
  distill::NatWindow w;
  w.sequence = 3;
  w.start = 5;
  w.length = 20;
  w.anchors = {0, 7, 17};
  auto wb = distill::MakeNatBatch(**store, {w}, 3, kMask);
  ASSERT_TRUE(wb.ok()) << wb.status();
  auto seq = (*store)->Read(3);
  ASSERT_TRUE(seq.ok());
  const at::Tensor full = torch::tensor(std::vector<int64_t>(seq->tokens.begin(), seq->tokens.end())).view({1, -1});
  const at::Tensor logp = torch::log_softmax(target_->logits(full)[0], -1);  // [32,V]
  const at::Tensor rows = logp.index_select(0, wb->pred_row + 5);
  EXPECT_TRUE(torch::equal(std::get<1>(rows.max(-1)), wb->teacher_ids.select(1, 0)));
  EXPECT_LT((std::get<0>(rows.max(-1)) - wb->teacher_logprobs.select(1, 0)).abs().max().item<double>(), 1e-2);
  EXPECT_EQ(wb->pred_row.size(0), 20 + 3 * 2);
  EXPECT_TRUE(torch::equal(wb->windows[0], full[0].narrow(0, 5, 20)));
  // Every offset is present; offset 1 once per window token.
  const at::Tensor counts = torch::bincount(b->pred_offset, {}, 4);
  EXPECT_EQ(counts[1].item<int64_t>(), 4 * 20);
  EXPECT_EQ(counts[2].item<int64_t>(), 4 * 5);
  EXPECT_EQ(counts[3].item<int64_t>(), 4 * 5);

  // Held-out windows: the last 8 sequences, anchors from the last prompt token (5) on, and
  // after filtering every offset is measured on the same contexts.
  const auto held = data->HeldOutWindows();
  ASSERT_EQ(held.size(), 8u);
  for (const auto& w : held) {
    EXPECT_GE(w.sequence, (*store)->num_sequences() - 8);
    EXPECT_EQ(w.min_anchor, 5);
    EXPECT_EQ(w.anchors.front(), 5);
    EXPECT_EQ(w.anchors.back(), 20 - 3);
  }
  auto hb = distill::MakeNatBatch(**store, held, 3, kMask);
  ASSERT_TRUE(hb.ok()) << hb.status();
  const at::Tensor hc = torch::bincount(hb->pred_offset, {}, 4);
  EXPECT_EQ(hc[1].item<int64_t>(), 8 * 13);
  EXPECT_EQ(hc[2].item<int64_t>(), 8 * 13);
  EXPECT_EQ(hc[3].item<int64_t>(), 8 * 13);
}

TEST_F(NatDistill, ShortRunRaisesHeldOutAcceptance) {
  // The untrained student (the same init the run starts from) as the baseline.
  ModelConfig cfg = Tiny(1, 32);
  const std::string cfg_path = root_ + "/student.json";
  ASSERT_TRUE(WriteFileAtomic(cfg_path, cfg.ToJson().dump()).ok());
  LlamaModel init(cfg);
  init->init_weights(0);
  ASSERT_TRUE(SaveCheckpoint(init, AugurMeta{}, root_ + "/init").ok());
  distill::NatDistillOptions o = Options(root_ + "/nat");
  o.student = root_ + "/init";
  auto before = distill::EvaluateNat(o);
  ASSERT_TRUE(before.ok()) << before.status();
  const double alpha0 = train::MetricOr(*before, "alpha", -1);

  o.student = cfg_path;
  auto r = distill::DistillNat(o);
  ASSERT_TRUE(r.ok()) << r.status();
  const double alpha1 = train::MetricOr(r->valid_metrics, "alpha", -1);
  for (int64_t j = 1; j <= 3; ++j) {
    const double aj = train::MetricOr(r->valid_metrics, absl::StrCat("alpha_", j), -1);
    EXPECT_GT(aj, train::MetricOr(*before, absl::StrCat("alpha_", j), -1)) << "offset " << j;
  }
  EXPECT_GT(alpha1, alpha0 + 0.1) << "alpha before " << alpha0 << " after " << alpha1;
  std::printf("held-out alpha: untrained %.4f, after 60 steps %.4f\n", alpha0, alpha1);
  EXPECT_GT(train::MetricOr(r->valid_metrics, "alpha_1", -1), train::MetricOr(r->valid_metrics, "alpha_3", 2))
      << "offset 1 sees the most context";

  // The checkpoint is a nat-drafter the engine can use; greedy output stays the target's.
  auto drafter = LoadNatDrafter(root_ + "/nat", 128);
  ASSERT_TRUE(drafter.ok()) << drafter.status();
  EXPECT_EQ((*drafter)->trained_gamma(), 3);
  EXPECT_EQ((*drafter)->mask_id(), kMask);
  std::vector<int64_t> prompt = {7, 9, 11, 13, 15, 17};
  GenerateOptions go;
  go.max_new = 30;
  go.sampling.temperature = 0;
  go.eos_id = -1;
  auto ref = Generate(*target_, prompt, go);
  ASSERT_TRUE(ref.ok());
  SpecOptions so;
  so.gamma = 3;
  so.max_new = 30;
  so.sampling.temperature = 0;
  so.eos_id = -1;
  auto spec = SpeculativeGenerate(*target_, **drafter, prompt, so);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->tokens, ref->tokens);
  EXPECT_GT(spec->stats.accepted, 0);

  // A wrong kind is refused by the eval loader; a wrong mask id by distillation.
  auto not_nat = LoadNatDrafter(root_ + "/target", 128);
  ASSERT_FALSE(not_nat.ok());
  EXPECT_NE(not_nat.status().message().find("not 'nat-drafter'"), std::string::npos) << not_nat.status();
  distill::NatDistillOptions bad = Options(root_ + "/nat_bad");
  bad.student = cfg_path;
  bad.mask_id = 61;
  auto refused = distill::DistillNat(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("mask-id 61"), std::string::npos) << refused.status();
}

// Largest absolute difference between the weights of two checkpoints.
double MaxDiff(const std::string& a, const std::string& b) {
  auto ca = LoadCheckpoint(a), cb = LoadCheckpoint(b);
  EXPECT_TRUE(ca.ok() && cb.ok());
  if (!ca.ok() || !cb.ok()) return 1e9;
  double d = 0;
  auto pa = ca->model->named_parameters(), pb = cb->model->named_parameters();
  for (const auto& item : pa) d = std::max(d, (item.value() - pb[item.key()]).abs().max().item<double>());
  return d;
}

TEST_F(NatDistill, ResumeEqualsAnUninterruptedRun) {
  const std::string cfg_path = root_ + "/student_resume.json";
  ASSERT_TRUE(WriteFileAtomic(cfg_path, Tiny(1, 32).ToJson().dump()).ok());
  distill::NatDistillOptions full = Options(root_ + "/full");
  full.student = cfg_path;
  full.train.steps = 6;
  full.train.eval_every = 3;
  ASSERT_TRUE(distill::DistillNat(full).ok());
  distill::NatDistillOptions half = full;
  half.train.out_dir = root_ + "/half";
  half.train.stop_after = 3;
  auto first = distill::DistillNat(half);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->steps, 3);
  half.train.stop_after = 0;
  half.train.resume = true;
  auto second = distill::DistillNat(half);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->start_step, 3);
  EXPECT_EQ(second->steps, 6);
  EXPECT_LT(MaxDiff(full.train.out_dir, half.train.out_dir), 1e-6);
  // The layout settings fix what a step means: another gamma is refused on resume.
  distill::NatDistillOptions changed = half;
  changed.gamma = 2;
  changed.train.steps = 8;
  auto r = distill::DistillNat(changed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("gamma=3"), std::string::npos) << r.status();
}

// ---- the augur binary ------------------------------------------------------------------

struct ShellRun {
  int rc = -1;
  std::string out, err;
};

ShellRun Shell(const std::string& cmd, const std::string& dir) {
  ShellRun r;
  r.rc = std::system((cmd + " >" + dir + "/out.txt 2>" + dir + "/err.txt").c_str());
  r.out = ReadFile(dir + "/out.txt").value_or("");
  r.err = ReadFile(dir + "/err.txt").value_or("");
  return r;
}

TEST_F(NatDistill, Cli) {
  const char* bin = std::getenv("AUGUR_BIN");
  if (bin == nullptr || !FileExists(bin)) GTEST_SKIP() << "AUGUR_BIN is not set or not built (run through ctest)";
  const std::string cfg_path = root_ + "/student_cli.json";
  ASSERT_TRUE(WriteFileAtomic(cfg_path, Tiny(1, 32).ToJson().dump()).ok());
  const std::string base = std::string(bin) + " distill nat --target " + root_ + "/target --teacher " + root_ +
                           "/teacher.h5 --mask-id 4 --threads 1 --quiet --seq-len 32 --eval-sequences 8";
  ShellRun r = Shell(base + " --student " + cfg_path + " --gamma 3 --out " + root_ +
                         "/cli --steps 4 --batch 4 --groups-per-seq 3 --eval-every 2",
                     root_);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("alpha_3"), std::string::npos) << r.err;
  auto meta = ReadFile(root_ + "/cli/augur.json");
  ASSERT_TRUE(meta.ok());
  const auto j = nlohmann::json::parse(*meta);
  EXPECT_EQ(j["kind"], "nat-drafter");
  EXPECT_EQ(j["gamma"], 3);
  EXPECT_EQ(j["mask_token_id"], 4);
  auto metrics = ReadFile(root_ + "/cli/metrics.jsonl");
  ASSERT_TRUE(metrics.ok());
  int evals = 0;
  for (absl::string_view line : absl::StrSplit(*metrics, '\n')) {
    if (line.empty()) continue;
    const auto e = nlohmann::json::parse(std::string(line));
    if (e.value("event", "") != "eval") continue;
    ++evals;
    for (const char* k : {"alpha", "alpha_1", "alpha_2", "alpha_3", "valid_loss"}) EXPECT_TRUE(e.contains(k)) << line;
    EXPECT_FALSE(e.contains("alpha_4")) << line;
  }
  EXPECT_EQ(evals, 2);  // steps 2 and 4

  r = Shell(base + " --student " + root_ + "/cli --gamma 3 --out " + root_ + "/cli_eval --eval-only", root_);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("alpha_1 "), std::string::npos) << r.out;

  r = Shell(base + " --gamma 0 --out " + root_ + "/cli_bad", root_);
  EXPECT_NE(r.rc, 0);
  EXPECT_EQ(r.err, "augur distill nat: --gamma 0: must be >= 1\n");
  r = Shell(std::string(bin) + " distill nat --help", root_);
  EXPECT_EQ(r.rc, 0);
}

}  // namespace
}  // namespace augur
