// augur distill ar and the trainer generalisation under it: the LM objective equals a plain
// reference loop; distillation raises held-out alpha; self-distillation gives alpha 1 and
// KD loss 0; the held-out alpha equals a slow per-sequence reference; vocabulary mismatches
// are refused; off-policy and mix runs resume exactly; init from the target copies the
// chosen layers exactly. Tiny models built in a temp dir; each test runs in seconds.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/checkpoint_fingerprint.h"
#include "core/fs.h"
#include "distill/ar_distill.h"
#include "distill/teacher_gen.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "tests/tiny_model.h"

namespace augur::distill {
namespace {

constexpr char kTok[] = "tok-A-0123456789abcdef";

ModelConfig TargetConfig(int64_t vocab = 64) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

ModelConfig StudentConfig(int64_t vocab = 64) {
  ModelConfig c = TargetConfig(vocab);
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  return c;
}

class TempDir {
 public:
  TempDir() : path_(MakeTempDir("augur_distill_ar_test_")) {}
  ~TempDir() { RemoveTree(path_); }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A random target made peaked (embeddings scaled up, logits of std ~5), so that a random
// student is far from it and alpha has room to rise.
void SaveTarget(const std::string& dir, const ModelConfig& cfg, uint64_t seed, const std::string& tok = kTok) {
  LlamaModel m(cfg);
  m->init_weights(seed);
  {
    torch::NoGradGuard g;
    m->model->embed_tokens->weight.mul_(40.0);
  }
  AugurMeta meta;
  meta.tokenizer_fingerprint = tok;
  ASSERT_TRUE(SaveCheckpoint(m, meta, dir).ok());
}

// Greedy continuations of random 8-token prompts by the target, scored into a teacher store.
void MakeStore(const std::string& target_dir, const std::string& out, int64_t n, const std::string& tok = kTok) {
  auto target = LoadCheckpoint(target_dir);
  ASSERT_TRUE(target.ok()) << target.status();
  PromptSet prompts;
  prompts.source = "test prompts";
  prompts.tokenizer_fingerprint = tok;
  prompts.vocab_size = target->model->config().vocab_size;
  std::mt19937_64 rng(7);
  for (int64_t i = 0; i < n; ++i) {
    TeacherPrompt p;
    p.index = i;
    for (int j = 0; j < 8; ++j) p.tokens.push_back(3 + static_cast<int64_t>(rng() % (prompts.vocab_size - 3)));
    prompts.prompts.push_back(p);
  }
  TeacherGenOptions o;
  o.top_k = 8;
  o.max_new = 16;
  o.eos_id = -1;
  o.progress = false;
  o.target_fingerprint = *CheckpointFingerprint(target_dir);
  o.target_tokenizer_fingerprint = tok;
  auto r = GenerateTeacherData(*target->model, prompts, out, o);
  ASSERT_TRUE(r.ok()) << r.status();
}

class DistillArTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    SaveTarget(dir_.sub("target"), TargetConfig(), 1);
    MakeStore(dir_.sub("target"), dir_.sub("teacher.h5"), 40);
    std::ofstream(dir_.sub("student.json")) << StudentConfig().ToJson().dump();
  }

  ArDistillOptions Options(const std::string& out, int64_t steps = 40) const {
    ArDistillOptions o;
    o.target = dir_.sub("target");
    o.teacher = dir_.sub("teacher.h5");
    o.student = dir_.sub("student.json");
    o.eval_sequences = 8;
    o.train.out_dir = dir_.sub(out);
    o.train.steps = steps;
    o.train.batch = 8;
    o.train.seq_len = 16;
    o.train.lr = 1e-2;
    o.train.warmup = 2;
    o.train.eval_every = 0;
    o.train.save_every = 0;
    o.train.progress = false;
    o.train.seed = 3;
    return o;
  }

  TempDir dir_;
};

// The slow obvious alpha: per held-out sequence, without padding or batching, mean over the
// continuation rows of sum_x min(p, q).
double ReferenceAlpha(const std::string& target_dir, const std::string& student_dir, const std::string& teacher,
                      int64_t held_out, int64_t T) {
  torch::NoGradGuard g;
  auto target = LoadCheckpoint(target_dir);
  auto student = LoadCheckpoint(student_dir);
  auto store = TeacherStore::Open(teacher);
  double sum = 0;
  int64_t n = 0;
  for (int64_t s = (*store)->num_sequences() - held_out; s < (*store)->num_sequences(); ++s) {
    auto seq = (*store)->Read(s);
    const int64_t L = std::min<int64_t>(T, seq->length());
    std::vector<int64_t> ids(seq->tokens.begin(), seq->tokens.begin() + L);
    at::Tensor x = torch::tensor(ids, torch::kLong).unsqueeze(0);
    at::Tensor p = torch::softmax(target->model->logits(x)[0], -1);
    at::Tensor q = torch::softmax(student->model->logits(x)[0], -1);
    for (int64_t i = seq->prompt_len - 1; i < L; ++i, ++n) sum += torch::minimum(p[i], q[i]).sum().item<double>();
  }
  return sum / static_cast<double>(n);
}

TEST(LmObjective, TrainEqualsAPlainReferenceLoop) {
  TempDir dir;
  ModelConfig cfg = StudentConfig();
  train::TrainOptions o;
  o.out_dir = dir.sub("run");
  o.steps = 5;
  o.batch = 2;
  o.seq_len = 8;
  o.grad_accum = 2;
  o.lr = 5e-3;
  o.warmup = 2;
  o.clip = 0.5;
  o.eval_every = 0;
  o.save_every = 0;
  o.progress = false;
  o.seed = 11;
  train::TrainData data;
  data.train = [](int64_t index, int64_t b, int64_t t) -> absl::StatusOr<at::Tensor> {
    return torch::remainder(torch::arange(b * (t + 1), torch::kLong).reshape({b, t + 1}) * (index + 3) + index, 64);
  };
  auto r = train::Train(cfg, data, o);
  ASSERT_TRUE(r.ok()) << r.status();

  // The loop written out: AdamW, warmup + cosine, accumulation, clipping.
  torch::manual_seed(o.seed);
  LlamaModel ref(cfg);
  ref->init_weights(o.seed);
  auto opt = train::MakeAdamW(*ref, {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay});
  train::LrSchedule sched{o.lr, o.warmup, o.steps, o.min_lr_ratio};
  for (int64_t step = 0; step < o.steps; ++step) {
    train::SetLearningRate(*opt, sched.at(step));
    opt->zero_grad();
    std::vector<at::Tensor> micro;
    for (int64_t m = 0; m < o.grad_accum; ++m) micro.push_back(*data.train(step * o.grad_accum + m, o.batch, o.seq_len));
    at::Tensor loss = train::AccumulateGradients(ref, micro);
    EXPECT_NEAR(loss.item<double>(), r->losses[step], 1e-6) << "step " << step;
    auto params = ref->parameters();
    torch::nn::utils::clip_grad_norm_(params, o.clip);
    opt->step();
  }
  auto saved = LoadCheckpoint(o.out_dir);
  ASSERT_TRUE(saved.ok());
  const auto got = saved->model->named_parameters();
  for (const auto& p : ref->named_parameters())
    EXPECT_LT((p.value() - got[p.key()]).abs().max().item<double>(), 1e-6) << p.key();
  EXPECT_EQ(saved->meta.kind, "target");
}

TEST_F(DistillArTest, FklRaisesHeldOutAlphaAndWritesADrafter) {
  // The init's alpha: a random student saved with the same seed the run initialises from.
  {
    LlamaModel init(StudentConfig());
    init->init_weights(3);
    AugurMeta meta;
    meta.tokenizer_fingerprint = kTok;
    ASSERT_TRUE(SaveCheckpoint(init, meta, dir_.sub("init")).ok());
  }
  ArDistillOptions e = Options("init_eval");
  e.student = dir_.sub("init");
  auto before = EvaluateAr(e);
  ASSERT_TRUE(before.ok()) << before.status();
  const double alpha0 = train::MetricOr(*before, "alpha", -1);
  // The batched, padded held-out alpha equals the per-sequence reference.
  EXPECT_NEAR(alpha0, ReferenceAlpha(dir_.sub("target"), dir_.sub("init"), dir_.sub("teacher.h5"), 8, 16), 1e-5);

  auto r = DistillAr(Options("fkl", 60));
  ASSERT_TRUE(r.ok()) << r.status();
  const double alpha1 = train::MetricOr(r->valid_metrics, "alpha", -1);
  std::printf("held-out alpha: init %.4f -> distilled %.4f\n", alpha0, alpha1);
  EXPECT_GT(alpha1, alpha0 + 0.1) << "init alpha " << alpha0;
  EXPECT_NEAR(alpha1, ReferenceAlpha(dir_.sub("target"), dir_.sub("fkl"), dir_.sub("teacher.h5"), 8, 16), 1e-5);

  auto ck = LoadCheckpoint(dir_.sub("fkl"));
  ASSERT_TRUE(ck.ok());
  EXPECT_EQ(ck->meta.kind, "ar-drafter");
  EXPECT_EQ(ck->meta.target_fingerprint, *CheckpointFingerprint(dir_.sub("target")));
  EXPECT_EQ(ck->meta.tokenizer_fingerprint, kTok);
  auto best = LoadCheckpoint(dir_.sub("fkl/best"));
  ASSERT_TRUE(best.ok());
  EXPECT_EQ(best->meta.extra["selected_by"]["metric"], "alpha");
  EXPECT_DOUBLE_EQ(best->meta.extra["selected_by"]["value"].get<double>(), r->best_value);
  EXPECT_GE(r->best_value, alpha1);
}

TEST_F(DistillArTest, SelfDistillationHasAlphaOneAndZeroLoss) {
  ArDistillOptions o = Options("self", 2);
  o.student = "target";
  o.init = "target";
  o.train.lr = 1e-7;
  auto r = DistillAr(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(train::MetricOr(r->valid_metrics, "alpha", -1), 0.999);
  EXPECT_LT(train::MetricOr(r->valid_metrics, "valid_loss", -1), 1e-3);
  EXPECT_GE(train::MetricOr(r->valid_metrics, "valid_loss", -1), -1e-6);

  ArDistillOptions e = Options("self_eval");
  e.student = dir_.sub("target");
  auto m = EvaluateAr(e);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NEAR(train::MetricOr(*m, "alpha", -1), 1.0, 1e-5);
  EXPECT_NEAR(train::MetricOr(*m, "valid_loss", -1), 0.0, 1e-5);
  // 8 held-out sequences of 8 + 16 tokens cut to T=16: rows 7..15 are continuation rows.
  EXPECT_EQ(train::MetricOr(*m, "valid_positions", -1), 8 * 9);
}

TEST_F(DistillArTest, VocabularyMismatchesAreRefused) {
  std::ofstream(dir_.sub("wide.json")) << StudentConfig(80).ToJson().dump();
  ArDistillOptions o = Options("bad_student");
  o.student = dir_.sub("wide.json");
  auto r = DistillAr(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocabulary mismatch: --student"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("vocab_size 80"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("has 64"), std::string::npos) << r.status();

  SaveTarget(dir_.sub("target80"), TargetConfig(80), 2);
  MakeStore(dir_.sub("target80"), dir_.sub("teacher80.h5"), 12);
  o = Options("bad_teacher");
  o.teacher = dir_.sub("teacher80.h5");
  r = DistillAr(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("has vocab size 80 but --target"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("vocab_size 64"), std::string::npos) << r.status();

  MakeStore(dir_.sub("target"), dir_.sub("teacherB.h5"), 12, "tok-B-fedcba9876543210");
  o = Options("bad_tokenizer");
  o.teacher = dir_.sub("teacherB.h5");
  r = DistillAr(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer tok-B-fedcba9876 but"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("uses tokenizer tok-A-0123456789"), std::string::npos) << r.status();

  // A teacher store made by another target (same vocabulary) is refused too.
  SaveTarget(dir_.sub("target_other"), TargetConfig(), 5);
  MakeStore(dir_.sub("target_other"), dir_.sub("teacher_other.h5"), 12);
  o = Options("other_target");
  o.teacher = dir_.sub("teacher_other.h5");
  r = DistillAr(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("generated by another target"), std::string::npos) << r.status();
}

TEST_F(DistillArTest, ResumeEqualsAnUninterruptedRunOffPolicyAndMix) {
  for (Policy policy : {Policy::kOff, Policy::kMix}) {
    const std::string name = PolicyName(policy);
    ArDistillOptions full = Options(name + "_full", 6);
    full.policy = policy;
    full.train.eval_every = 3;  // the interrupted run also evaluates at its stop (step 3)
    ASSERT_TRUE(DistillAr(full).ok());

    ArDistillOptions half = Options(name + "_half", 6);
    half.policy = policy;
    half.train.eval_every = 3;
    half.train.stop_after = 3;
    auto first = DistillAr(half);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->steps, 3);
    half.train.stop_after = 0;
    half.train.resume = true;
    auto second = DistillAr(half);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_EQ(second->start_step, 3);
    EXPECT_EQ(second->steps, 6);
    EXPECT_LT(tiny::MaxParamDiff(full.train.out_dir, half.train.out_dir), 1e-6) << name;
    EXPECT_LT(tiny::MaxParamDiff(full.train.out_dir + "/best", half.train.out_dir + "/best"), 1e-6) << name;
  }
  // lambda 0.5 over 6 steps drew on-policy steps (seed 3): the mix run is not the off-policy run.
  const double mix_vs_off = tiny::MaxParamDiff(dir_.sub("off_full"), dir_.sub("mix_full"));
  std::printf("max |mix - off| weight difference: %.3g\n", mix_vs_off);
  EXPECT_GT(mix_vs_off, 1e-4);

  // Changing the loss of a run is refused on resume.
  ArDistillOptions changed = Options("off_half", 8);
  changed.kd.kind = KdLossKind::kReverseKl;
  changed.train.resume = true;
  auto r = DistillAr(changed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("loss=\"fkl\""), std::string::npos) << r.status();
}

TEST_F(DistillArTest, OnPolicyLowersTheHeldOutLoss) {
  ArDistillOptions o = Options("on", 30);
  o.policy = Policy::kOn;
  o.train.eval_every = 1;
  o.train.log_every = 0;
  auto r = DistillAr(o);
  ASSERT_TRUE(r.ok()) << r.status();
  auto text = ReadFile(o.train.out_dir + "/metrics.jsonl");
  ASSERT_TRUE(text.ok());
  double first = -1, last = -1;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["event"] != "eval") continue;
    if (first < 0) first = j["valid_loss"];
    last = j["valid_loss"];
  }
  std::printf("on-policy held-out KD loss: %.4f -> %.4f\n", first, last);
  EXPECT_LT(last, 0.8 * first);
}

TEST_F(DistillArTest, InitFromTargetCopiesTheChosenLayers) {
  EXPECT_EQ(*ResolveInitLayers({}, 2, 6), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(*ResolveInitLayers({}, 3, 6), (std::vector<int64_t>{0, 3, 5}));
  EXPECT_EQ(*ResolveInitLayers({}, 3, 3), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(*ResolveInitLayers({2, 0}, 2, 3), (std::vector<int64_t>{2, 0}));
  EXPECT_FALSE(ResolveInitLayers({3}, 1, 3).ok());
  EXPECT_FALSE(ResolveInitLayers({0, 1, 2}, 2, 3).ok());

  ArDistillOptions o = Options("init", 1);
  o.student = "target";
  o.init = "target";
  o.init_layers = {2, 0};
  o.train.lr = 1e-30;  // one step that leaves the weights as they were copied
  o.train.weight_decay = 0;
  ASSERT_TRUE(DistillAr(o).ok());
  auto s = LoadCheckpoint(o.train.out_dir), t = LoadCheckpoint(dir_.sub("target"));
  ASSERT_TRUE(s.ok() && t.ok());
  EXPECT_EQ(s->model->config().num_hidden_layers, 2);
  const auto sp = s->model->named_parameters(), tp = t->model->named_parameters();
  auto same = [&](const std::string& a, const std::string& b) {
    return torch::equal(sp[a], tp[b]);
  };
  EXPECT_TRUE(same("model.embed_tokens.weight", "model.embed_tokens.weight"));
  EXPECT_TRUE(same("model.norm.weight", "model.norm.weight"));
  for (const char* w : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                        "self_attn.o_proj.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight",
                        "mlp.down_proj.weight", "input_layernorm.weight", "post_attention_layernorm.weight"}) {
    EXPECT_TRUE(same(std::string("model.layers.0.") + w, std::string("model.layers.2.") + w)) << w;
    EXPECT_TRUE(same(std::string("model.layers.1.") + w, std::string("model.layers.0.") + w)) << w;
    EXPECT_FALSE(same(std::string("model.layers.1.") + w, std::string("model.layers.1.") + w) &&
                 std::string(w).find("layernorm") == std::string::npos)
        << w;
  }

  // A narrower student cannot start from the target: the error names the field and sizes.
  ArDistillOptions narrow = Options("narrow");
  narrow.init = "target";
  auto r = DistillAr(narrow);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("hidden_size is 16 but the target's is 32"), std::string::npos) << r.status();
}

// ---- the augur binary ------------------------------------------------------------------

struct ShellRun {
  int rc = -1;
  std::string out, err;
};

TEST_F(DistillArTest, CliTrainsResumesWithSavedSettingsAndRefusesMismatches) {
  const char* bin = std::getenv("AUGUR_BIN");
  if (bin == nullptr || !FileExists(bin)) GTEST_SKIP() << "AUGUR_BIN is not set or not built (run through ctest)";
  auto shell = [&](const std::string& args) {
    ShellRun r;
    r.rc = std::system((std::string(bin) + " distill ar " + args + " >" + dir_.sub("out.txt") + " 2>" +
                        dir_.sub("err.txt"))
                           .c_str());
    r.out = ReadFile(dir_.sub("out.txt")).value_or("");
    r.err = ReadFile(dir_.sub("err.txt")).value_or("");
    return r;
  };
  auto io = [&](const std::string& out) {
    return " --target " + dir_.sub("target") + " --teacher " + dir_.sub("teacher.h5") + " --out " + dir_.sub(out) +
           " --threads 1 --quiet";
  };
  ShellRun r = shell(io("cli") + " --student " + dir_.sub("student.json") +
                     " --loss rkl --policy mix --lambda 0.25 --steps 4 --stop-after 2 --batch 4 --seq-len 16 "
                     "--eval-sequences 8 --eval-every 2");
  ASSERT_EQ(r.rc, 0) << r.err;
  // Resume with only the paths: loss, policy, lambda, batch, seq-len and the held-out set come from the run.
  r = shell(io("cli") + " --student " + dir_.sub("student.json") + " --resume");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("loss rkl, policy mix (lambda 0.25), 4 steps x 64 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("done: step 4"), std::string::npos) << r.err;
  auto ck = LoadCheckpoint(dir_.sub("cli"));
  ASSERT_TRUE(ck.ok());
  EXPECT_EQ(ck->meta.kind, "ar-drafter");
  EXPECT_EQ(ck->meta.extra["distill"]["loss"], "rkl");

  std::ofstream(dir_.sub("wide.json")) << StudentConfig(80).ToJson().dump();
  r = shell(io("cli2") + " --student " + dir_.sub("wide.json") + " --loss fkl --seq-len 16");
  EXPECT_NE(r.rc, 0);
  // The start banner, then the error as one line.
  const size_t at = r.err.find("\naugur distill ar: vocabulary mismatch: --student");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n', at + 1), r.err.size() - 1) << r.err;

  r = shell(io("cli3") + " --student " + dir_.sub("target") + " --eval-only --seq-len 16 --eval-sequences 8");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out.rfind("valid_loss ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" alpha 1 "), std::string::npos) << r.out;

  r = shell("--help");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("--policy off|on|mix"), std::string::npos);
}

}  // namespace
}  // namespace augur::distill
