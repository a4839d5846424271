// train/: schedule values, gradient accumulation equivalence, exact resume, NaN stop,
// a short run that lowers the loss, and the files a run leaves behind.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <ftw.h>
#include <fstream>
#include <map>
#include <string>

#include "core/checkpoint.h"
#include "core/fs.h"
#include "datasets/token_store_writer.h"
#include "train/checkpointing.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/store_data.h"
#include "train/trainer.h"

namespace augur::train {
namespace {

ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

// Deterministic learnable sequences: each row follows next = (3 * cur + 1) mod 61 from a
// start drawn from (salt, index). A pure function of the index, like the token store.
BatchFn PatternBatches(uint64_t salt) {
  return [salt](int64_t index, int64_t batch, int64_t seq_len) -> absl::StatusOr<at::Tensor> {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(salt * 1000003 + static_cast<uint64_t>(index));
    at::Tensor start = torch::randint(0, 61, {batch}, gen, torch::kLong);
    at::Tensor out = torch::empty({batch, seq_len + 1}, torch::kLong);
    auto a = out.accessor<int64_t, 2>();
    for (int64_t b = 0; b < batch; ++b) {
      int64_t cur = start[b].item<int64_t>();
      for (int64_t t = 0; t <= seq_len; ++t) {
        a[b][t] = cur;
        cur = (3 * cur + 1) % 61;
      }
    }
    return out;
  };
}

TrainData PatternData() {
  TrainData d;
  d.train = PatternBatches(1);
  d.valid = PatternBatches(2);
  d.source = "pattern";
  d.data_fingerprint = "pattern-v1";
  d.vocab_size = 61;
  return d;
}

// A fresh directory under $TMPDIR, removed with everything in it. (POSIX: libtorch.so
// exports its own std::filesystem symbols, which crash when calls bind to them.)
class TempDir {
 public:
  TempDir() : path_(MakeTempDir("augur_train_test_")) {}
  ~TempDir() { RemoveTree(path_); }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TrainOptions TinyOptions(const std::string& out) {
  TrainOptions o;
  o.out_dir = out;
  o.steps = 6;
  o.batch = 4;
  o.seq_len = 16;
  o.lr = 3e-3;
  o.warmup = 2;
  o.eval_every = 0;
  o.eval_batches = 2;
  o.save_every = 0;
  o.log_every = 1;
  o.seed = 5;
  o.progress = false;
  o.threads = 1;
  return o;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(LrSchedule, ValuesAtChosenSteps) {
  LrSchedule s{1e-3, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);   // warmup: (0+1)/10 of the peak
  EXPECT_DOUBLE_EQ(s.at(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);   // last warmup step reaches the peak
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);  // cosine starts at the peak
  EXPECT_NEAR(s.at(60), 1e-4 + 0.9e-3 * 0.5, 1e-15);  // half way: floor + half the range
  EXPECT_NEAR(s.at(35), 1e-4 + 0.9e-3 * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);
  EXPECT_DOUBLE_EQ(s.at(110), 1e-4);  // the floor
  EXPECT_DOUBLE_EQ(s.at(500), 1e-4);  // and stays there
  LrSchedule nowarm{2e-3, 0, 100, 0.0};
  EXPECT_DOUBLE_EQ(nowarm.at(0), 2e-3);
  EXPECT_NEAR(nowarm.at(100), 0.0, 1e-18);
}

TEST(LrSchedule, ValidateRejectsBadValues) {
  EXPECT_TRUE((LrSchedule{1e-3, 0, 10, 0.1}).Validate().ok());
  EXPECT_FALSE((LrSchedule{0, 0, 10, 0.1}).Validate().ok());
  EXPECT_FALSE((LrSchedule{NAN, 0, 10, 0.1}).Validate().ok());
  EXPECT_FALSE((LrSchedule{1e-3, -1, 10, 0.1}).Validate().ok());
  EXPECT_FALSE((LrSchedule{1e-3, 0, 0, 0.1}).Validate().ok());
  EXPECT_FALSE((LrSchedule{1e-3, 0, 10, 1.5}).Validate().ok());
}

TEST(TrainOptions, ValidateNamesTheFlag) {
  TrainOptions o = TinyOptions("/tmp/x");
  EXPECT_TRUE(o.Validate().ok());
  o.batch = 0;
  EXPECT_NE(o.Validate().message().find("--batch"), std::string::npos);
  o = TinyOptions("/tmp/x");
  o.grad_accum = -1;
  EXPECT_NE(o.Validate().message().find("--grad-accum"), std::string::npos);
  o = TinyOptions("/tmp/x");
  o.clip = -1;
  EXPECT_NE(o.Validate().message().find("--clip"), std::string::npos);
  o = TinyOptions("");
  EXPECT_NE(o.Validate().message().find("--out"), std::string::npos);
  o = TinyOptions("/tmp/x");
  o.min_lr_ratio = 2;
  EXPECT_NE(o.Validate().message().find("--min-lr-ratio"), std::string::npos);
}

TEST(TrainOptions, JsonRoundTrip) {
  TrainOptions a = TinyOptions("/tmp/x");
  a.lr = 0.25;
  a.grad_accum = 3;
  TrainOptions b;
  ASSERT_TRUE(b.MergeJson(a.ToJson(), "test").ok());
  EXPECT_EQ(b.lr, 0.25);
  EXPECT_EQ(b.grad_accum, 3);
  EXPECT_EQ(b.seq_len, 16);
  EXPECT_FALSE(b.MergeJson(nlohmann::json{{"lr", "fast"}}, "test").ok());
}

TEST(Optimizer, DecayOnlyOnMatrices) {
  LlamaModel m(TinyConfig());
  auto opt = MakeAdamW(*m, {1e-3, 0.9, 0.95, 1e-8, 0.1});
  ASSERT_EQ(opt->param_groups().size(), 2u);
  for (const auto& p : opt->param_groups()[0].params()) EXPECT_GE(p.dim(), 2);
  for (const auto& p : opt->param_groups()[1].params()) EXPECT_EQ(p.dim(), 1);
  EXPECT_EQ(static_cast<const torch::optim::AdamWOptions&>(opt->param_groups()[0].options()).weight_decay(), 0.1);
  EXPECT_EQ(static_cast<const torch::optim::AdamWOptions&>(opt->param_groups()[1].options()).weight_decay(), 0.0);
  SetLearningRate(*opt, 0.5);
  for (auto& g : opt->param_groups()) EXPECT_EQ(g.options().get_lr(), 0.5);
}

TEST(Accumulation, TwoHalvesEqualOneFullBatch) {
  torch::set_num_threads(1);
  LlamaModel m(TinyConfig());
  m->init_weights(3);
  at::Tensor full = *PatternBatches(9)(0, 8, 12);
  auto grads = [&](const std::vector<at::Tensor>& mbs, double* loss) {
    for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
    *loss = AccumulateGradients(m, mbs).item<double>();
    std::vector<at::Tensor> g;
    for (auto& p : m->parameters()) g.push_back(p.grad().clone());
    return g;
  };
  double loss_full = 0, loss_accum = 0;
  auto g_full = grads({full}, &loss_full);
  auto g_accum = grads({full.narrow(0, 0, 4), full.narrow(0, 4, 4)}, &loss_accum);
  EXPECT_NEAR(loss_full, loss_accum, 1e-6);
  ASSERT_EQ(g_full.size(), g_accum.size());
  for (size_t i = 0; i < g_full.size(); ++i)
    EXPECT_TRUE(torch::allclose(g_full[i], g_accum[i], 1e-4, 1e-6)) << "parameter " << i;
  // And the loss is the plain mean cross-entropy.
  at::Tensor logits = m->logits(full.narrow(1, 0, 12));
  at::Tensor ref = torch::nn::functional::cross_entropy(logits.reshape({-1, 64}), full.narrow(1, 1, 12).reshape({-1}));
  EXPECT_NEAR(loss_full, ref.item<double>(), 1e-6);
}

TEST(Train, ShortRunLowersLossAndWritesFiles) {
  TempDir tmp;
  TrainOptions o = TinyOptions(tmp.sub("run"));
  o.steps = 40;
  o.eval_every = 20;
  o.save_every = 20;
  TrainData data = PatternData();
  data.tokenizer_fingerprint = "tok-fp";
  LlamaModel init(TinyConfig());
  init->init_weights(o.seed);  // the weights the run starts from
  auto before = EvaluateLoss(init, data.valid, 2, 4, 16);
  ASSERT_TRUE(before.ok());
  auto r = Train(TinyConfig(), data, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 40);
  ASSERT_EQ(r->losses.size(), 40u);
  EXPECT_NEAR(r->losses.front(), std::log(64.0), 0.3);  // starts near uniform
  EXPECT_LT(r->losses.back(), r->losses.front() - 1.0);
  EXPECT_LT(r->valid_loss, *before - 1.0);
  EXPECT_GT(r->tokens_per_s, 0);

  // The output is a loadable HF directory with provenance, plus trainer state and logs.
  auto ckpt = LoadCheckpoint(o.out_dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->meta.kind, "target");
  EXPECT_EQ(ckpt->meta.data_fingerprint, "pattern-v1");
  EXPECT_EQ(ckpt->meta.tokenizer_fingerprint, "tok-fp");
  EXPECT_EQ(ckpt->meta.extra.value("train_step", 0), 40);
  auto st = ReadTrainerState(o.out_dir);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->step, 40);
  EXPECT_EQ(st->tokens_seen, 40 * 4 * 16);
  EXPECT_NEAR(st->valid_loss, r->valid_loss, 1e-12);
  auto cfg = nlohmann::json::parse(Slurp(tmp.sub("run/train_config.json")));
  EXPECT_EQ(cfg["options"]["steps"], 40);
  EXPECT_EQ(cfg["model"]["hidden_size"], 32);
  EXPECT_EQ(cfg["resolved"]["tokens_per_step"], 64);
  // metrics.jsonl: 40 step lines, 2 evals, 2 saves, start and end.
  std::ifstream log(tmp.sub("run/metrics.jsonl"));
  std::map<std::string, int> events;
  for (std::string line; std::getline(log, line);) ++events[nlohmann::json::parse(line)["event"].get<std::string>()];
  EXPECT_EQ(events["step"], 40);
  EXPECT_EQ(events["eval"], 2);
  EXPECT_EQ(events["save"], 2);
  EXPECT_EQ(events["start"], 1);
  EXPECT_EQ(events["end"], 1);
  EXPECT_FALSE(IsDirectory(tmp.sub("run/.staging-" + std::to_string(::getpid()))));

  // Training again into the same directory without --resume is refused.
  auto again = Train(TinyConfig(), data, o);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(Train, ResumeGivesTheSameWeights) {
  TempDir tmp;
  TrainData data = PatternData();
  TrainOptions full = TinyOptions(tmp.sub("full"));
  full.grad_accum = 2;
  full.eval_every = 3;
  ASSERT_TRUE(Train(TinyConfig(), data, full).ok());

  TrainOptions half = full;
  half.out_dir = tmp.sub("split");
  half.stop_after = 3;
  auto first = Train(TinyConfig(), data, half);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->steps, 3);
  half.stop_after = 0;
  half.resume = true;
  // A save killed half way leaves a staging directory; the next run clears it.
  ASSERT_TRUE(MakeDirs(half.out_dir + "/.staging-999999").ok());
  std::ofstream(half.out_dir + "/.staging-999999/model.safetensors") << "partial";
  auto second = Train(TinyConfig(), data, half);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->start_step, 3);
  EXPECT_EQ(second->steps, 6);

  auto a = LoadCheckpoint(full.out_dir);
  auto b = LoadCheckpoint(half.out_dir);
  ASSERT_TRUE(a.ok() && b.ok());
  auto pa = a->model->named_parameters(), pb = b->model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    const at::Tensor& other = pb[item.key()];
    EXPECT_LE((item.value() - other).abs().max().item<double>(), 1e-6) << item.key();
  }
  EXPECT_EQ(ReadTrainerState(full.out_dir)->tokens_seen, ReadTrainerState(half.out_dir)->tokens_seen);
  EXPECT_FALSE(IsDirectory(half.out_dir + "/.staging-999999"));
}

TEST(Train, ResumeRefusesChangedDataOrder) {
  TempDir tmp;
  TrainData data = PatternData();
  TrainOptions o = TinyOptions(tmp.sub("run"));
  o.steps = 2;
  ASSERT_TRUE(Train(TinyConfig(), data, o).ok());
  o.resume = true;
  o.steps = 4;
  o.batch = 2;
  auto r = Train(TinyConfig(), data, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("batch"), std::string::npos) << r.status();
  o.batch = 4;
  TrainData other = data;
  other.data_fingerprint = "other";
  r = Train(TinyConfig(), other, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("fingerprint"), std::string::npos) << r.status();
  // Nothing to resume from.
  TrainOptions fresh = TinyOptions(tmp.sub("empty"));
  fresh.resume = true;
  EXPECT_EQ(Train(TinyConfig(), data, fresh).status().code(), absl::StatusCode::kNotFound);
}

TEST(Train, NonFiniteLossStopsAndKeepsLastGoodCheckpoint) {
  TempDir tmp;
  TrainData data = PatternData();
  TrainOptions o = TinyOptions(tmp.sub("run"));
  o.steps = 6;
  o.save_every = 2;
  // Poison one weight before step index 3 (the 4th step).
  data.before_step = [](int64_t step, LlamaModel& m) {
    if (step == 3) {
      torch::NoGradGuard g;
      m->model->norm->weight.fill_(std::numeric_limits<float>::quiet_NaN());
    }
  };
  auto r = Train(TinyConfig(), data, o);
  ASSERT_FALSE(r.ok());
  const std::string msg(r.status().message());
  EXPECT_NE(msg.find("step 4/6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(step 2)"), std::string::npos) << msg;
  auto st = ReadTrainerState(o.out_dir);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->step, 2);
  auto ckpt = LoadCheckpoint(o.out_dir);
  ASSERT_TRUE(ckpt.ok());
  for (const auto& p : ckpt->model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  // The error is in the log too.
  EXPECT_NE(Slurp(tmp.sub("run/metrics.jsonl")).find("\"event\":\"error\""), std::string::npos);
}

TEST(Train, RefusesBadInputs) {
  TempDir tmp;
  TrainData data = PatternData();
  TrainOptions o = TinyOptions(tmp.sub("run"));
  data.vocab_size = 100;  // larger than the model's 64
  auto r = Train(TinyConfig(), data, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocab_size"), std::string::npos);
  data = PatternData();
  o.seq_len = 100;  // > max_position_embeddings 64
  EXPECT_NE(Train(TinyConfig(), data, o).status().message().find("max_position_embeddings"), std::string::npos);
  o = TinyOptions(tmp.sub("run2"));
  o.dtype = "bfloat16";  // autocast on the CPU is refused
  EXPECT_NE(Train(TinyConfig(), data, o).status().message().find("CUDA only"), std::string::npos);
  o = TinyOptions(tmp.sub("run3"));
  data.train = [](int64_t, int64_t b, int64_t t) -> absl::StatusOr<at::Tensor> {
    return torch::full({b, t + 1}, 70, torch::kLong);  // outside the vocabulary
  };
  r = Train(TinyConfig(), data, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("token ids"), std::string::npos) << r.status();
  data.train = [](int64_t, int64_t b, int64_t t) -> absl::StatusOr<at::Tensor> {
    return torch::zeros({b, t}, torch::kLong);  // one column short
  };
  r = Train(TinyConfig(), data, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expected [4, 17]"), std::string::npos) << r.status();
}

// A tiny token store: documents BOS + pattern + EOS, 40 in train and 6 in valid.
std::string WritePatternStore(const TempDir& tmp) {
  const std::string path = tmp.sub("tiny.h5");
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = "fake-tokenizer";
  meta.vocab_size = 61;
  meta.bos_id = 1;
  meta.eos_id = 2;
  meta.sources = "[\"pattern\"]";
  meta.valid_fraction = 0.1;
  meta.created_by = "train_test";
  auto w = TokenStoreWriter::Create(path, meta);
  EXPECT_TRUE(w.ok()) << w.status();
  for (int d = 0; d < 46; ++d) {
    std::vector<int32_t> doc = {1};
    int32_t cur = (d * 7) % 61;
    for (int t = 0; t < 60 + d; ++t) {
      doc.push_back(cur);
      cur = (3 * cur + 1) % 61;
    }
    doc.push_back(2);
    EXPECT_TRUE((*w)->Add(doc, d < 40 ? Split::kTrain : Split::kValid, "doc" + std::to_string(d)).ok());
  }
  EXPECT_TRUE((*w)->Finish().ok());
  return path;
}

TEST(StoreData, BatchesArePureFunctionsOfSeedAndIndex) {
  TempDir tmp;
  const std::string store = WritePatternStore(tmp);
  std::vector<std::string> warnings;
  auto a = OpenStoreData(store, {7, 16, ""}, &warnings);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->vocab_size, 61);
  EXPECT_EQ(a->tokenizer_fingerprint, "fake-tokenizer");
  EXPECT_FALSE(a->data_fingerprint.empty());
  EXPECT_TRUE(a->tokenizer_model.empty());
  ASSERT_EQ(warnings.size(), 1u);  // the store names no tokenizer
  EXPECT_NE(warnings[0].find("--tokenizer"), std::string::npos);
  auto b = OpenStoreData(store, {7, 16, ""}, nullptr);
  auto c = OpenStoreData(store, {8, 16, ""}, nullptr);
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_EQ(a->data_fingerprint, b->data_fingerprint);
  at::Tensor a3 = *a->train(3, 4, 16);
  EXPECT_EQ(a3.sizes(), (std::vector<int64_t>{4, 17}));
  EXPECT_TRUE(torch::equal(a3, *b->train(3, 4, 16)));
  EXPECT_FALSE(torch::equal(a3, *c->train(3, 4, 16)));  // another seed, another order
  EXPECT_FALSE(torch::equal(a3, *a->train(4, 4, 16)));
  // Validation windows do not depend on the training seed.
  ASSERT_TRUE(a->valid && c->valid);
  EXPECT_TRUE(torch::equal(*a->valid(0, 4, 16), *c->valid(0, 4, 16)));
  // An explicit tokenizer that does not exist is an error; a missing store too.
  EXPECT_FALSE(OpenStoreData(store, {7, 16, tmp.sub("no-such-tokenizer")}, nullptr).ok());
  EXPECT_FALSE(OpenStoreData(tmp.sub("missing.h5"), {7, 16, ""}, nullptr).ok());
  // A valid split shorter than one window disables validation with a warning.
  warnings.clear();
  auto long_windows = OpenStoreData(store, {7, 4000, ""}, &warnings);
  ASSERT_TRUE(long_windows.ok());
  EXPECT_FALSE(long_windows->valid);
  EXPECT_EQ(warnings.size(), 2u);
}

TEST(StoreData, FindsTheTokenizerNextToTheStore) {
  // A store built elsewhere records a relative --tokenizer path; a tokenizer directory of
  // that name beside the store is found. A fake one there is refused (wrong fingerprint).
  TempDir tmp;
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = "fake-tokenizer";
  meta.vocab_size = 61;
  meta.created_by = "augur 0.1.0: augur data build --tokenizer elsewhere/tok --out x.h5";
  auto w = TokenStoreWriter::Create(tmp.sub("s.h5"), meta);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Add(std::vector<int32_t>(100, 5), Split::kTrain, "d").ok());
  ASSERT_TRUE((*w)->Finish().ok());
  ASSERT_TRUE(MakeDirs(tmp.sub("tok")).ok());
  std::ofstream(tmp.sub("tok/tokenizer.model")) << "not a model";
  std::vector<std::string> warnings;
  auto d = OpenStoreData(tmp.sub("s.h5"), {0, 8, ""}, &warnings);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->tokenizer_model.empty());
  bool named = false;
  for (const auto& w : warnings) named |= w.find("elsewhere/tok") != std::string::npos;
  EXPECT_TRUE(named);
}

TEST(StoreData, TokenizerFromCreatedBy) {
  EXPECT_EQ(TokenizerFromCreatedBy("augur 0.1.0: augur data build --input x --tokenizer runs/tok --out s.h5"),
            "runs/tok");
  EXPECT_EQ(TokenizerFromCreatedBy("augur 0.1.0: augur data build --tokenizer=runs/tok"), "runs/tok");
  EXPECT_EQ(TokenizerFromCreatedBy("augur data build --out s.h5"), "");
}

TEST(Train, ShortRunOnATinyStoreLowersTheLoss) {
  TempDir tmp;
  const std::string store = WritePatternStore(tmp);
  TrainOptions o = TinyOptions(tmp.sub("run"));
  o.steps = 40;
  o.lr = 1e-2;
  o.eval_every = 40;
  auto data = OpenStoreData(store, {o.seed, o.seq_len, ""}, nullptr);
  ASSERT_TRUE(data.ok());
  LlamaModel init(TinyConfig());
  init->init_weights(o.seed);
  auto before = EvaluateLoss(init, data->valid, o.eval_batches, o.batch, o.seq_len);
  ASSERT_TRUE(before.ok());
  EXPECT_NEAR(*before, std::log(64.0), 0.3);
  auto r = Train(TinyConfig(), *data, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(r->valid_loss, *before - 1.0) << "before " << *before << " after " << r->valid_loss;
  auto ckpt = LoadCheckpoint(o.out_dir);
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->meta.data_fingerprint, data->data_fingerprint);
  EXPECT_EQ(ckpt->meta.tokenizer_fingerprint, "fake-tokenizer");
}

// ---- the augur binary: data -> train -> generate ---------------------------------

struct ShellRun {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

ShellRun Shell(const std::string& cmd, const TempDir& tmp) {
  const std::string out = tmp.sub("stdout.txt"), err = tmp.sub("stderr.txt");
  ShellRun r;
  r.rc = std::system((cmd + " >" + out + " 2>" + err).c_str());
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

TEST(Cli, TrainThenGenerateIsDeterministic) {
  const char* bin = std::getenv("AUGUR_BIN");
  if (bin == nullptr || !FileExists(bin)) GTEST_SKIP() << "AUGUR_BIN is not set or not built (run through ctest)";
  TempDir tmp;
  const std::string augur = bin;
  // A small synthetic Python-like corpus, enough for a 320-piece tokenizer.
  MakeDirs(tmp.sub("corpus"));
  for (int f = 0; f < 24; ++f) {
    std::ofstream out(tmp.sub("corpus/mod" + std::to_string(f) + ".py"));
    for (int i = 0; i < 60; ++i)
      out << "def handler_" << (f * 60 + i) % 97 << "(value, count=" << i % 7 << "):\n"
          << "    total = value * " << (i * 13 + f) % 29 << " + count\n"
          << "    if total > " << i << ":\n        return str(total).upper()\n    return None\n\n";
  }
  std::ofstream(tmp.sub("tiny.json"))
      << R"({"architectures":["LlamaForCausalLM"],"vocab_size":320,"hidden_size":32,"intermediate_size":64,)"
      << R"("num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":128,)"
      << R"("rms_norm_eps":1e-5,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2,"hidden_act":"silu"})";
  ShellRun r = Shell(augur + " data tokenizer --input " + tmp.sub("corpus") + " --vocab-size 320 --out " + tmp.sub("tok"), tmp);
  ASSERT_EQ(r.rc, 0) << r.err;
  r = Shell(augur + " data build --input " + tmp.sub("corpus") + " --tokenizer " + tmp.sub("tok") + " --out " +
                tmp.sub("s.h5") + " --valid-fraction 0.2",
            tmp);
  ASSERT_EQ(r.rc, 0) << r.err;

  const std::string train = augur + " train --data " + tmp.sub("s.h5") + " --out " + tmp.sub("run") +
                            " --steps 12 --batch 4 --seq-len 32 --warmup 2 --lr 5e-3 --eval-batches 2 --threads 1 --quiet";
  r = Shell(train, tmp);  // no --config
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("--config"), std::string::npos) << r.err;
  r = Shell(train + " --config " + tmp.sub("tiny.json"), tmp);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("done: step 12"), std::string::npos) << r.err;
  // The store named its tokenizer, so the checkpoint carries it.
  EXPECT_TRUE(FileExists(tmp.sub("run/tokenizer.model")));
  EXPECT_TRUE(FileExists(tmp.sub("run/train_config.json")));
  r = Shell(train + " --config " + tmp.sub("tiny.json"), tmp);  // again without --resume
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r.err;
  r = Shell(augur + " train --data " + tmp.sub("s.h5") + " --out " + tmp.sub("run") + " --resume --steps 14 --quiet", tmp);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(ReadTrainerState(tmp.sub("run"))->step, 14);

  const std::string gen = augur + " generate --model " + tmp.sub("run") + " --prompt 'def handler_' --max-new 16 " +
                          "--temperature 1 --top-p 0.9 --threads 1 --only-new --ignore-eos";
  ShellRun a = Shell(gen + " --seed 5", tmp);
  ShellRun b = Shell(gen + " --seed 5", tmp);
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GT(a.out.size(), 1u);
  EXPECT_NE(a.err.find("16 new tokens"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("tokens/s"), std::string::npos) << a.err;
  // Bad input: one line naming the flag, non-zero exit.
  r = Shell(augur + " generate --model " + tmp.sub("run") + " --prompt x --top-p 2", tmp);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.err.find("top-p"), std::string::npos) << r.err;
  r = Shell(augur + " generate --model " + tmp.sub("nothing") + " --prompt x", tmp);
  EXPECT_NE(r.rc, 0);
}

}  // namespace
}  // namespace augur::train
