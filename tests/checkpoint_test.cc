// core/checkpoint: save/load round trips (weights and logits equal, every architecture,
// dtype conversion both ways, sharded), rewriting a directory, augur.json, and one test per
// kind of bad directory.
#include "core/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include "core/fs.h"
#include "core/safetensors.h"

namespace augur {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

bool PathExists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

// Tiny: 2 layers, d=32, GQA 4/2, head_dim 8.
ModelConfig Tiny(const std::string& arch = "LlamaForCausalLM", bool tied = true) {
  ModelConfig c;
  c.architecture = arch;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = tied;
  c.attention_bias = arch == "Qwen2ForCausalLM";
  return c;
}

// Random weights everywhere (norms and biases too) so a swapped tensor shows.
LlamaModel RandomModel(const ModelConfig& cfg, uint64_t seed) {
  LlamaModel m(cfg);
  m->init_weights(seed);
  torch::NoGradGuard g;
  torch::manual_seed(seed);
  for (auto& p : m->named_parameters())
    if (p.key().find("norm") != std::string::npos || p.key().find("bias") != std::string::npos)
      p.value().add_(torch::randn_like(p.value()) * 0.1);
  return m;
}

SaveOptions Opts(std::string dtype, int64_t max_shard_bytes = 0, std::string tokenizer_model = "") {
  SaveOptions o;
  o.dtype = std::move(dtype);
  o.max_shard_bytes = max_shard_bytes;
  o.tokenizer_model = std::move(tokenizer_model);
  return o;
}

at::Tensor Ids() { return torch::tensor({{1, 5, 9, 3, 17, 42, 7, 0, 63, 8}}, torch::kInt64); }

at::Tensor Logits(LlamaModel& m) {
  torch::NoGradGuard g;
  return m->logits(Ids());
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("augur_ckpt_");
    ASSERT_FALSE(root_.empty());
    dir_ = root_ + "/model";
  }
  void TearDown() override { RemoveTree(root_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  void Save(LlamaModel& m, const SaveOptions& opts = {}, const AugurMeta& meta = {}) {
    absl::Status st = SaveCheckpoint(m, meta, dir_, opts);
    ASSERT_TRUE(st.ok()) << st;
  }
  // Loads and expects an error containing `problem`; returns the message.
  std::string LoadError(const std::string& problem) {
    auto ck = LoadCheckpoint(dir_);
    EXPECT_FALSE(ck.ok()) << "loaded a bad checkpoint";
    if (ck.ok()) return "";
    std::string msg(ck.status().message());
    EXPECT_THAT(msg, HasSubstr(problem));
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  json ReadJson(const std::string& name) { return json::parse(*ReadFile(Path(name))); }
  void WriteJson(const std::string& name, const json& j) { ASSERT_TRUE(WriteFileAtomic(Path(name), j.dump(2)).ok()); }
  // Rewrites model.safetensors through `edit`.
  template <typename F>
  void EditWeights(F edit) {
    NamedTensors t;
    {
      auto f = SafetensorsFile::Open(Path("model.safetensors"));
      ASSERT_TRUE(f.ok()) << f.status();
      for (const auto& info : (*f)->tensors()) t.emplace_back(info.name, (*f)->Read(info));
    }
    edit(t);
    ASSERT_TRUE(WriteSafetensors(Path("model.safetensors"), t).ok());
  }

  std::string root_, dir_;
};

void ExpectSameWeights(LlamaModel& a, LlamaModel& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa) {
    const at::Tensor* q = pb.find(p.key());
    ASSERT_NE(q, nullptr) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), *q)) << p.key();
  }
}

class RoundTrip : public CheckpointTest,
                  public ::testing::WithParamInterface<std::tuple<std::string, bool>> {};

TEST_P(RoundTrip, EqualWeightsAndLogits) {
  auto [arch, tied] = GetParam();
  ModelConfig cfg = Tiny(arch, tied);
  if (arch == "MistralForCausalLM") cfg.sliding_window = 4;
  LlamaModel m = RandomModel(cfg, 7);
  Save(m);
  auto ck = LoadCheckpoint(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  const ModelConfig& got = ck->model->config();
  EXPECT_EQ(got.architecture, arch);
  EXPECT_EQ(got.tie_word_embeddings, tied);
  EXPECT_EQ(got.attention_bias, cfg.attention_bias);
  EXPECT_EQ(got.sliding_window, cfg.sliding_window);
  EXPECT_EQ(got.intermediate_size, 48);
  EXPECT_EQ(ck->model->dtype(), torch::kFloat32);
  ExpectSameWeights(m, ck->model);
  EXPECT_TRUE(torch::equal(Logits(m), Logits(ck->model)));
  EXPECT_EQ(ck->meta.kind, "target");
  EXPECT_EQ(ck->dir, dir_);
  EXPECT_EQ(ck->tokenizer_model, "");

  // The file holds exactly the model's parameters, lm_head only when untied.
  auto f = SafetensorsFile::Open(Path("model.safetensors"));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->tensors().size(), m->named_parameters().size());
  EXPECT_EQ((*f)->Find("lm_head.weight") != nullptr, !tied);
  EXPECT_NE((*f)->Find("model.layers.1.self_attn.k_proj.weight"), nullptr);
  EXPECT_EQ((*f)->Find("model.layers.0.self_attn.q_proj.bias") != nullptr, arch == "Qwen2ForCausalLM");
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
}

INSTANTIATE_TEST_SUITE_P(Architectures, RoundTrip,
                         ::testing::Values(std::make_tuple("LlamaForCausalLM", true),
                                           std::make_tuple("LlamaForCausalLM", false),
                                           std::make_tuple("Qwen2ForCausalLM", true),
                                           std::make_tuple("MistralForCausalLM", false)));

TEST_F(CheckpointTest, ConfigJsonHasTheHuggingFaceFields) {
  LlamaModel m = RandomModel(Tiny("LlamaForCausalLM", false), 1);
  Save(m, Opts("bfloat16"));
  json c = ReadJson("config.json");
  EXPECT_EQ(c["architectures"], json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["hidden_size"], 32);
  EXPECT_EQ(c["intermediate_size"], 48);
  EXPECT_EQ(c["num_key_value_heads"], 2);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["hidden_act"], "silu");
  EXPECT_EQ(c["torch_dtype"], "bfloat16");
}

TEST_F(CheckpointTest, SixteenBitOnDiskConvertsBothWays) {
  for (const std::string dtype : {"float16", "bfloat16"}) {
    SCOPED_TRACE(dtype);
    const torch::Dtype t = dtype == "float16" ? torch::kFloat16 : torch::kBFloat16;
    LlamaModel m = RandomModel(Tiny(), 3);
    Save(m, Opts(dtype));
    auto f = SafetensorsFile::Open(Path("model.safetensors"));
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->Find("model.norm.weight")->dtype, t == torch::kFloat16 ? StDtype::kF16 : StDtype::kBF16);
    f->reset();

    // Loaded as float32: exactly the rounded weights.
    auto ck = LoadCheckpoint(dir_);
    ASSERT_TRUE(ck.ok()) << ck.status();
    EXPECT_EQ(ck->model->dtype(), torch::kFloat32);
    for (const auto& p : m->named_parameters())
      EXPECT_TRUE(torch::equal(ck->model->named_parameters()[p.key()], p.value().to(t).to(torch::kFloat32))) << p.key();
    // Loaded as the 16-bit type: the same bits, and logits close to float32's.
    auto ck16 = LoadCheckpoint(dir_, torch::kCPU, t);
    ASSERT_TRUE(ck16.ok()) << ck16.status();
    EXPECT_EQ(ck16->model->dtype(), t);
    EXPECT_TRUE(torch::equal(ck16->model->model->embed_tokens->weight, m->model->embed_tokens->weight.to(t)));
    EXPECT_LT((Logits(ck16->model) - Logits(m)).abs().max().item<float>(), 0.05);
  }
}

TEST_F(CheckpointTest, LoadConvertsFloat32FileToBfloat16) {
  LlamaModel m = RandomModel(Tiny("LlamaForCausalLM", false), 4);
  Save(m);
  auto ck = LoadCheckpoint(dir_, torch::kCPU, torch::kBFloat16);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_TRUE(torch::equal(ck->model->lm_head->weight, m->lm_head->weight.to(torch::kBFloat16)));
}

TEST_F(CheckpointTest, ShardedRoundTrip) {
  LlamaModel m = RandomModel(Tiny("LlamaForCausalLM", false), 5);
  Save(m, Opts("float32", 8192));  // embeddings are 8 KiB: several shards
  EXPECT_FALSE(FileExists(Path("model.safetensors")));
  ASSERT_TRUE(FileExists(Path("model.safetensors.index.json")));
  json idx = ReadJson("model.safetensors.index.json");
  EXPECT_EQ(idx["weight_map"].size(), m->named_parameters().size());
  int64_t bytes = 0;
  for (const auto& p : m->named_parameters()) bytes += p.value().numel() * 4;
  EXPECT_EQ(idx["metadata"]["total_size"], bytes);
  auto ck = LoadCheckpoint(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  ExpectSameWeights(m, ck->model);
  EXPECT_TRUE(torch::equal(Logits(m), Logits(ck->model)));
}

TEST_F(CheckpointTest, SavingIntoAnExistingDirectoryReplacesIt) {
  LlamaModel a = RandomModel(Tiny(), 10);
  Save(a, Opts("float32", 4096));
  std::ofstream(Path("train_log.jsonl")) << "{}\n";
  LlamaModel b = RandomModel(Tiny("Qwen2ForCausalLM", false), 11);
  Save(b);
  auto ck = LoadCheckpoint(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->model->config().architecture, "Qwen2ForCausalLM");
  ExpectSameWeights(b, ck->model);
  EXPECT_EQ(ListDir(dir_), (std::set<std::string>{"augur.json", "config.json", "model.safetensors", "train_log.jsonl"}));
}

TEST_F(CheckpointTest, TokenizerWithoutConfigMustParse) {
  // Without a tokenizer_config.json beside it, the config is made from the tokenizer,
  // so a file that is not a SentencePiece model is refused by name.
  std::string tok = root_ + "/bogus.model";
  std::ofstream(tok, std::ios::binary) << "not a protobuf";
  LlamaModel m = RandomModel(Tiny(), 2);
  absl::Status st = SaveCheckpoint(m, AugurMeta{}, dir_, Opts("float32", 0, tok));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("bogus.model"));
}

TEST_F(CheckpointTest, MetaAndTokenizerRoundTrip) {
  std::string tok = root_ + "/tok.model";
  std::ofstream(tok, std::ios::binary) << "sentencepiece bytes";
  // The tokenizer's transformers settings travel with it (written by augur data tokenizer).
  std::ofstream(root_ + "/tokenizer_config.json") << "{\"add_prefix_space\": false}";
  AugurMeta meta;
  meta.kind = "nat-drafter";
  meta.gamma = 4;
  meta.mask_token_id = 3;
  meta.target_fingerprint = "abc";
  meta.data_fingerprint = "def";
  meta.tokenizer_fingerprint = "ghi";
  meta.command_line = "augur distill nat --gamma 4";
  meta.extra = {{"steps", 100}};
  LlamaModel m = RandomModel(Tiny(), 2);
  Save(m, Opts("float32", 0, tok), meta);
  auto ck = LoadCheckpoint(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->meta.kind, "nat-drafter");
  EXPECT_EQ(ck->meta.gamma, 4);
  EXPECT_EQ(ck->meta.mask_token_id, 3);
  EXPECT_EQ(ck->meta.quantization, "");
  EXPECT_EQ(ck->meta.target_fingerprint, "abc");
  EXPECT_EQ(ck->meta.data_fingerprint, "def");
  EXPECT_EQ(ck->meta.tokenizer_fingerprint, "ghi");
  EXPECT_EQ(ck->meta.command_line, "augur distill nat --gamma 4");
  EXPECT_FALSE(ck->meta.version.empty());
  EXPECT_EQ(ck->meta.extra["steps"], 100);
  EXPECT_EQ(ck->tokenizer_model, Path("tokenizer.model"));
  EXPECT_EQ(*ReadFile(Path("tokenizer_config.json")), "{\"add_prefix_space\": false}");
  EXPECT_EQ(*ReadFile(Path("tokenizer.model")), "sentencepiece bytes");
}

TEST_F(CheckpointTest, NoAugurJsonMeansTarget) {
  LlamaModel m = RandomModel(Tiny(), 2);
  Save(m);
  ::unlink(Path("augur.json").c_str());
  auto ck = LoadCheckpoint(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->meta.kind, "target");
}

TEST_F(CheckpointTest, IgnoresRotaryInvFreqAndTiedLmHead) {
  LlamaModel m = RandomModel(Tiny("LlamaForCausalLM", true), 6);
  Save(m);
  EditWeights([](NamedTensors& t) {
    t.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", torch::ones({4}));
    t.emplace_back("lm_head.weight", torch::zeros({64, 32}));  // ignored: tied to the embedding
  });
  auto ck = LoadCheckpoint(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_TRUE(torch::equal(Logits(m), Logits(ck->model)));
}

// ---- bad directories ----------------------------------------------------------------------

TEST_F(CheckpointTest, NoSuchDirectory) {
  auto ck = LoadCheckpoint(root_ + "/nope");
  EXPECT_TRUE(absl::IsNotFound(ck.status()));
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr(root_ + "/nope: no such directory"));
}

TEST_F(CheckpointTest, MissingConfigJson) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  ::unlink(Path("config.json").c_str());
  LoadError("checkpoint: " + dir_ + ": no config.json");
}

TEST_F(CheckpointTest, UnsupportedArchitecture) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  json c = ReadJson("config.json");
  c["architectures"] = {"GPT2LMHeadModel"};
  WriteJson("config.json", c);
  std::string msg = LoadError("unsupported architecture 'GPT2LMHeadModel'");
  EXPECT_THAT(msg, HasSubstr(Path("config.json")));
}

TEST_F(CheckpointTest, ShapeMismatchWithConfigJson) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  json c = ReadJson("config.json");
  c["intermediate_size"] = 40;
  WriteJson("config.json", c);
  LoadError("checkpoint: " + Path("model.safetensors") +
            ": tensor model.layers.0.mlp.gate_proj.weight has shape [48,32] but config.json implies [40,32]");
}

TEST_F(CheckpointTest, ShapeMismatchInAShardNamesTheShard) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m, Opts("float32", 8192));
  json c = ReadJson("config.json");
  c["hidden_size"] = 40;
  c["head_dim"] = 10;
  WriteJson("config.json", c);
  LoadError(": tensor model.embed_tokens.weight has shape [64,32] but config.json implies [64,40]");
  auto ck = LoadCheckpoint(dir_);
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr(Path("model-00001-of-")));
}

TEST_F(CheckpointTest, MissingTensor) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  EditWeights([](NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& x) { return x.first == "model.norm.weight"; }), t.end());
  });
  LoadError("checkpoint: " + Path("model.safetensors") + ": missing tensor model.norm.weight that config.json implies");
}

TEST_F(CheckpointTest, UntiedConfigNeedsLmHead) {
  LlamaModel m = RandomModel(Tiny("LlamaForCausalLM", true), 1);
  Save(m);
  json c = ReadJson("config.json");
  c["tie_word_embeddings"] = false;
  WriteJson("config.json", c);
  LoadError("missing tensor lm_head.weight");
}

TEST_F(CheckpointTest, MoreLayersInConfigListsMissingTensors) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  json c = ReadJson("config.json");
  c["num_hidden_layers"] = 3;
  WriteJson("config.json", c);
  LoadError("missing tensors model.layers.2.self_attn.q_proj.weight, model.layers.2.self_attn.k_proj.weight, "
            "model.layers.2.self_attn.v_proj.weight and 6 more");
}

TEST_F(CheckpointTest, UnexpectedTensor) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  EditWeights([](NamedTensors& t) { t.emplace_back("model.layers.0.mlp.extra.weight", torch::ones({2})); });
  LoadError("checkpoint: " + Path("model.safetensors") +
            ": unexpected tensor model.layers.0.mlp.extra.weight (not in a LlamaForCausalLM with this config.json)");
}

TEST_F(CheckpointTest, IntegerTensorIsRefused) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  EditWeights([](NamedTensors& t) {
    for (auto& [n, x] : t)
      if (n == "model.norm.weight") x = x.to(torch::kInt8);
  });
  LoadError("tensor model.norm.weight has dtype I8, not a float type");
}

TEST_F(CheckpointTest, QuantizedCheckpointIsRefused) {
  LlamaModel m = RandomModel(Tiny(), 1);
  AugurMeta meta;
  meta.quantization = "int8";
  Save(m, {}, meta);
  auto ck = LoadCheckpoint(dir_);
  EXPECT_TRUE(absl::IsFailedPrecondition(ck.status()));
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr(dir_ + ": is quantized (int8)"));
}

TEST_F(CheckpointTest, NoWeights) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  ::unlink(Path("model.safetensors").c_str());
  LoadError(dir_ + ": no model.safetensors or model.safetensors.index.json");
  std::ofstream(Path("pytorch_model.bin")) << "pickle";
  LoadError("holds pytorch_model.bin only; augur reads safetensors");
}

TEST_F(CheckpointTest, CorruptWeightsFile) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  struct stat st;
  ASSERT_EQ(::stat(Path("model.safetensors").c_str(), &st), 0);
  ASSERT_EQ(::truncate(Path("model.safetensors").c_str(), st.st_size - 4), 0);
  LoadError("safetensors: " + Path("model.safetensors") + ": tensor model.norm.weight has data_offsets");
}

TEST_F(CheckpointTest, BadAugurJson) {
  LlamaModel m = RandomModel(Tiny(), 1);
  Save(m);
  WriteJson("augur.json", {{"kind", "teacher"}});
  LoadError(Path("augur.json") + ": unknown kind 'teacher'");
  WriteJson("augur.json", {{"kind", "target"}, {"gamma", "four"}});
  LoadError("field 'gamma' has the wrong type");
  WriteJson("augur.json", {{"format_version", 99}});
  LoadError("format_version 99 is newer");
  ASSERT_TRUE(WriteFileAtomic(Path("augur.json"), "{kind").ok());
  LoadError(Path("augur.json") + ": not valid JSON");
}

TEST_F(CheckpointTest, SaveRefusesBadOptions) {
  LlamaModel m = RandomModel(Tiny(), 1);
  auto st = SaveCheckpoint(m, {}, dir_, Opts("float8"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("unsupported dtype 'float8'"));
  st = SaveCheckpoint(m, {}, dir_, Opts("float32", 0, root_ + "/none.model"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("none.model does not exist"));
  EXPECT_FALSE(PathExists(dir_));
  std::ofstream(root_ + "/file") << "x";
  st = SaveCheckpoint(m, {}, root_ + "/file");
  EXPECT_THAT(std::string(st.message()), HasSubstr("is a file, not a directory"));
  EXPECT_FALSE(LoadCheckpoint(dir_, torch::kCPU, torch::kInt32).ok());
}

}  // namespace
}  // namespace augur
