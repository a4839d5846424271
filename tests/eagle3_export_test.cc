// EAGLE-3 export (quantize/eagle3_export.h): the files it writes against Layout() (names,
// shapes, dtypes, order, values), the table in docs/FORMATS.md against Layout(), config.json's
// keys for vLLM / SGLang / llama.cpp, the round trip (augur reads its export back to the same
// tensors, and re-exporting gives the same bytes), dequantization of a quantized drafter, and
// each refusal with its message. The checkpoints are random-weight eagle-drafters written here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "core/checkpoint.h"
#include "core/eagle_head.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "quantize/eagle3_export.h"
#include "runtime/qweight.h"
#include "runtime/scheme.h"

namespace augur::eagle3 {
namespace {

using nlohmann::json;

// Small sizes with every dimension distinct where the layout lets them differ (d = dt is required).
Dims SmallDims() {
  Dims m;
  m.hidden = 32;
  m.target_hidden = 32;
  m.heads = 4;
  m.kv_heads = 2;
  m.head_dim = 12;  // H*hd = 48 != d: catches a q/o shape written with d
  m.intermediate = 40;
  m.draft_vocab = 24;
  m.target_vocab = 40;
  return m;
}

const std::vector<int64_t> kLayers = {1, 3, 4};
constexpr int64_t kTargetLayers = 6;

// The draft vocabulary's target ids: (7i + 3) mod V for i < Nd, sorted (distinct: 7 is coprime to
// V = 40), so d2t holds offsets of both signs.
std::vector<int64_t> DraftTargets(const Dims& m) {
  std::vector<int64_t> t;
  for (int64_t i = 0; i < m.draft_vocab; ++i) t.push_back((i * 7 + 3) % m.target_vocab);  // 7 is coprime to 40
  std::sort(t.begin(), t.end());
  return t;
}

struct Source {
  NamedTensors tensors;     // Layout() order, float32 / int64 / bool
  json config, meta;
  std::map<std::string, std::string> st_metadata;
};

Source RandomSource(const Dims& m, uint64_t seed = 1) {
  torch::manual_seed(seed);
  Source s;
  for (const TensorSpec& spec : Layout(m)) {
    at::Tensor t;
    if (spec.name == "d2t") {
      std::vector<int64_t> off;
      const auto targets = DraftTargets(m);
      for (int64_t i = 0; i < m.draft_vocab; ++i) off.push_back(targets[i] - i);
      t = torch::tensor(off, torch::kInt64);
    } else if (spec.name == "t2d") {
      t = torch::zeros({m.target_vocab}, torch::kBool);
      for (int64_t id : DraftTargets(m)) t[id] = true;
    } else if (spec.shape.size() == 1) {
      t = 1 + 0.1 * torch::randn(spec.shape);
    } else {
      t = 0.2 * torch::randn(spec.shape);
    }
    s.tensors.emplace_back(spec.name, t);
  }
  // augur's own config.json for the drafter layer (a plain Llama config of one layer).
  s.config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
              {"hidden_size", m.hidden},              {"intermediate_size", m.intermediate},
              {"num_attention_heads", m.heads},       {"num_key_value_heads", m.kv_heads},
              {"head_dim", m.head_dim},               {"num_hidden_layers", 1},
              {"rms_norm_eps", 1e-6},                 {"rope_theta", 50000.0},
              {"max_position_embeddings", 2048},      {"vocab_size", m.target_vocab},
              {"bos_token_id", 1},                    {"eos_token_id", 2},
              {"hidden_act", "silu"},                 {"tie_word_embeddings", false},
              {"torch_dtype", "float32"}};
  s.meta = {{"format_version", 1},
            {"kind", "eagle-drafter"},
            {"quantization", nullptr},
            {"provenance", {{"target_fingerprint", "abc"}, {"command_line", "augur distill eagle ..."}}},
            {"extra",
             {{"eagle",
               {{"target_layers", kLayers},
                {"target_hidden_size", m.target_hidden},
                {"target_num_layers", kTargetLayers},
                {"target_vocab_size", m.target_vocab}}}}}};
  return s;
}

void WriteSource(const Source& s, const std::string& dir) {
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteSafetensors(JoinPath(dir, kSafetensorsSingleName), s.tensors, s.st_metadata).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "config.json"), s.config.dump(2)).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "augur.json"), s.meta.dump(2)).ok());
}

at::Tensor& TensorOf(Source& s, const std::string& name) {
  for (auto& [n, t] : s.tensors)
    if (n == name) return t;
  ADD_FAILURE() << "no tensor " << name;
  static at::Tensor none;
  return none;
}

json ReadJsonFile(const std::string& path) {
  auto text = ReadFile(path);
  EXPECT_TRUE(text.ok()) << path;
  return json::parse(text.ok() ? *text : "{}");
}

class Eagle3ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = MakeTempDir("augur_eagle3_");
    ASSERT_FALSE(root_.empty());
  }
  void TearDown() override { RemoveTree(root_); }
  std::string Path(const std::string& name) const { return JoinPath(root_, name); }

  // Writes a source changed by `edit`, exports it, and returns the status message ("" = OK).
  std::string ExportError(const std::function<void(Source&)>& edit, const std::string& name = "bad") {
    Source s = RandomSource(SmallDims());
    edit(s);
    WriteSource(s, Path(name));
    auto r = Export(Path(name), Path(name + "-out"));
    return r.ok() ? "" : std::string(r.status().message());
  }

  std::string root_;
};

TEST(Eagle3Layout, NamesShapesDtypes) {
  const Dims m = SmallDims();
  const std::vector<TensorSpec> layout = Layout(m);
  std::map<std::string, std::pair<StDtype, std::vector<int64_t>>> want = {
      {"fc.weight", {StDtype::kF32, {32, 96}}},
      {"midlayer.input_layernorm.weight", {StDtype::kF32, {32}}},
      {"midlayer.hidden_norm.weight", {StDtype::kF32, {32}}},
      {"midlayer.self_attn.q_proj.weight", {StDtype::kF32, {48, 64}}},
      {"midlayer.self_attn.k_proj.weight", {StDtype::kF32, {24, 64}}},
      {"midlayer.self_attn.v_proj.weight", {StDtype::kF32, {24, 64}}},
      {"midlayer.self_attn.o_proj.weight", {StDtype::kF32, {32, 48}}},
      {"midlayer.post_attention_layernorm.weight", {StDtype::kF32, {32}}},
      {"midlayer.mlp.gate_proj.weight", {StDtype::kF32, {40, 32}}},
      {"midlayer.mlp.up_proj.weight", {StDtype::kF32, {40, 32}}},
      {"midlayer.mlp.down_proj.weight", {StDtype::kF32, {32, 40}}},
      {"norm.weight", {StDtype::kF32, {32}}},
      {"lm_head.weight", {StDtype::kF32, {24, 32}}},
      {"d2t", {StDtype::kI64, {24}}},
      {"t2d", {StDtype::kBool, {40}}},
  };
  ASSERT_EQ(layout.size(), want.size());
  for (const TensorSpec& spec : layout) {
    auto it = want.find(spec.name);
    ASSERT_NE(it, want.end()) << spec.name;
    EXPECT_EQ(spec.dtype, it->second.first) << spec.name;
    EXPECT_EQ(spec.shape, it->second.second) << spec.name;
  }
}

// docs/FORMATS.md's "EAGLE-3 export" table holds one row per Layout() tensor with the same
// name, symbolic shape and dtype, and no other tensor rows.
TEST(Eagle3Layout, DocsTableMatchesLayout) {
  const char* src = std::getenv("AUGUR_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "AUGUR_SOURCE_DIR is set by ctest";
  auto text = ReadFile(JoinPath(src, "docs/FORMATS.md"));
  ASSERT_TRUE(text.ok());
  const size_t begin = text->find("## EAGLE-3 export");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = text->find("\n## ", begin + 1);
  const std::string section = text->substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  // Rows: | `name` | `[shape]` | DTYPE | ...
  std::regex row(R"(\n\| `([A-Za-z0-9_.]+)` \| `(\[[^`]*\])` \| (F32|I64|BOOL) \|)");
  std::map<std::string, std::pair<std::string, std::string>> rows;
  for (auto it = std::sregex_iterator(section.begin(), section.end(), row); it != std::sregex_iterator(); ++it)
    rows[(*it)[1]] = {(*it)[2], (*it)[3]};
  const auto layout = Layout(SmallDims());
  EXPECT_EQ(rows.size(), layout.size());
  for (const TensorSpec& spec : layout) {
    auto it = rows.find(spec.name);
    ASSERT_NE(it, rows.end()) << spec.name << " has no row in docs/FORMATS.md";
    EXPECT_EQ(it->second.first, spec.symbolic) << spec.name;
    EXPECT_EQ(it->second.second, StDtypeName(spec.dtype)) << spec.name;
  }
}

TEST_F(Eagle3ExportTest, WritesTheLayoutAndTheServingConfig) {
  const Dims m = SmallDims();
  Source s = RandomSource(m);
  WriteSource(s, Path("src"));
  auto summary = Export(Path("src"), Path("out"));
  ASSERT_TRUE(summary.ok()) << summary.status();

  auto file = SafetensorsFile::Open(JoinPath(Path("out"), kSafetensorsSingleName));
  ASSERT_TRUE(file.ok()) << file.status();
  const auto layout = Layout(m);
  std::vector<std::string> names;
  for (const StTensorInfo& info : (*file)->tensors()) names.push_back(info.name);
  std::vector<std::string> want_names;
  for (const TensorSpec& spec : layout) want_names.push_back(spec.name);
  EXPECT_EQ(names, want_names);  // exactly these, in file order
  for (size_t i = 0; i < layout.size(); ++i) {
    const StTensorInfo* info = (*file)->Find(layout[i].name);
    ASSERT_NE(info, nullptr) << layout[i].name;
    EXPECT_EQ(info->dtype, layout[i].dtype) << layout[i].name;
    EXPECT_EQ(info->shape, layout[i].shape) << layout[i].name;
    at::Tensor got = (*file)->Read(*info);
    EXPECT_TRUE(torch::equal(got, s.tensors[i].second)) << layout[i].name;
  }

  const json c = ReadJsonFile(JoinPath(Path("out"), "config.json"));
  EXPECT_EQ(c["architectures"], json::array({"LlamaForCausalLMEagle3"}));
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["hidden_size"], 32);
  EXPECT_EQ(c["intermediate_size"], 40);
  EXPECT_EQ(c["num_attention_heads"], 4);
  EXPECT_EQ(c["num_key_value_heads"], 2);
  EXPECT_EQ(c["head_dim"], 12);
  EXPECT_EQ(c["num_hidden_layers"], 1);
  EXPECT_EQ(c["vocab_size"], 40);
  EXPECT_EQ(c["draft_vocab_size"], 24);
  EXPECT_EQ(c["target_hidden_size"], 32);
  EXPECT_EQ(c["rms_norm_eps"], 1e-6);
  EXPECT_EQ(c["rope_theta"], 50000.0);
  EXPECT_EQ(c["max_position_embeddings"], 2048);
  EXPECT_EQ(c["bos_token_id"], 1);
  EXPECT_EQ(c["eos_token_id"], 2);
  EXPECT_EQ(c["hidden_act"], "silu");
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["torch_dtype"], "float32");
  // vLLM and llama.cpp: top level, input-of-layer ids; SGLang: eagle_config, one lower.
  EXPECT_EQ(c["eagle_aux_hidden_state_layer_ids"], json::array({1, 3, 4}));
  EXPECT_EQ(c["eagle_config"]["eagle_aux_hidden_state_layer_ids"], json::array({0, 2, 3}));
  EXPECT_EQ(c["eagle_config"]["use_aux_hidden_state"], true);
  EXPECT_EQ(c["augur_target_num_layers"], kTargetLayers);

  const json meta = ReadJsonFile(JoinPath(Path("out"), "augur.json"));
  EXPECT_EQ(meta["kind"], "eagle-drafter");
  EXPECT_TRUE(meta["quantization"].is_null());
  EXPECT_EQ(meta["extra"]["eagle"], s.meta["extra"]["eagle"]);
  EXPECT_EQ(meta["extra"]["export"]["format"], "eagle3");
  EXPECT_EQ(meta["extra"]["export"]["source_quantization"], "");
  EXPECT_EQ(meta["provenance"]["target_fingerprint"], "abc");
  EXPECT_EQ(ListDir(Path("out")), (std::set<std::string>{"augur.json", "config.json", "model.safetensors"}));
  // Nothing staged is left beside it.
  EXPECT_EQ(ListDir(root_), (std::set<std::string>{"out", "src"}));
}

// augur reads its own export back to the same drafter, and exporting the export again writes
// byte-identical weights (the export is a fixed point).
TEST_F(Eagle3ExportTest, ReadsItsExportBack) {
  const Dims m = SmallDims();
  WriteSource(RandomSource(m), Path("src"));
  ASSERT_TRUE(Export(Path("src"), Path("out")).ok());
  auto a = ReadDrafter(Path("src"));
  auto b = ReadDrafter(Path("out"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->target_layers, kLayers);
  EXPECT_EQ(b->target_num_layers, kTargetLayers);
  EXPECT_EQ(b->dims.draft_vocab, m.draft_vocab);
  EXPECT_EQ(b->dims.head_dim, m.head_dim);
  EXPECT_EQ(b->rms_norm_eps, 1e-6);
  EXPECT_EQ(b->rope_theta, 50000.0);
  ASSERT_EQ(a->tensors.size(), b->tensors.size());
  for (size_t i = 0; i < a->tensors.size(); ++i) {
    EXPECT_EQ(a->tensors[i].first, b->tensors[i].first);
    EXPECT_TRUE(torch::equal(a->tensors[i].second, b->tensors[i].second)) << a->tensors[i].first;
  }
  ASSERT_TRUE(Export(Path("out"), Path("out2")).ok());
  EXPECT_EQ(*ReadFile(JoinPath(Path("out"), kSafetensorsSingleName)),
            *ReadFile(JoinPath(Path("out2"), kSafetensorsSingleName)));
  EXPECT_EQ(ReadJsonFile(JoinPath(Path("out"), "config.json")), ReadJsonFile(JoinPath(Path("out2"), "config.json")));
}

// augur's own eagle-drafter loader (core/eagle_head.h) takes the export: every parameter and
// the draft -> target map as written, so it drafts exactly as the source did.
TEST_F(Eagle3ExportTest, AugurLoadsTheExportAsTheSameDrafter) {
  const Dims m = SmallDims();
  Source s = RandomSource(m);
  WriteSource(s, Path("src"));
  ASSERT_TRUE(Export(Path("src"), Path("out")).ok());
  auto loaded = LoadEagleHead(Path("out"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const EagleConfig& c = loaded->head->config();
  EXPECT_EQ(c.target_layers, kLayers);
  EXPECT_EQ(c.target_num_layers, kTargetLayers);
  EXPECT_EQ(c.draft_vocab_size, m.draft_vocab);
  EXPECT_EQ(c.vocab_size, m.target_vocab);
  EXPECT_EQ(c.head_dim, m.head_dim);
  size_t n = 0;
  for (const auto& p : loaded->head->named_parameters(/*recurse=*/true)) {
    EXPECT_TRUE(torch::equal(p.value(), TensorOf(s, p.key()))) << p.key();
    ++n;
  }
  EXPECT_EQ(n, Layout(m).size() - 2);  // all but d2t, t2d
  EXPECT_TRUE(torch::equal(loaded->head->draft_ids(), torch::tensor(DraftTargets(m), torch::kInt64)));
}

TEST_F(Eagle3ExportTest, ReplacesAnEarlierExportOnly) {
  WriteSource(RandomSource(SmallDims(), 1), Path("src1"));
  WriteSource(RandomSource(SmallDims(), 2), Path("src2"));
  auto first = Export(Path("src1"), Path("out"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Export(Path("src2"), Path("out") + "/");  // a trailing slash stages beside it too
  ASSERT_TRUE(second.ok()) << second.status();
  auto back = ReadDrafter(Path("out"));
  auto src2 = ReadDrafter(Path("src2"));
  ASSERT_TRUE(back.ok() && src2.ok());
  EXPECT_TRUE(torch::equal(back->tensors[0].second, src2->tensors[0].second));
  EXPECT_EQ(ListDir(root_), (std::set<std::string>{"out", "src1", "src2"}));

  ASSERT_TRUE(MakeDirs(Path("other")).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(Path("other"), "notes.txt"), "keep me").ok());
  auto r = Export(Path("src1"), Path("other"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            absl::StrCat("eagle3 export: ", Path("other"), ": exists and is not an EAGLE-3 export; remove it or choose "
                                                           "another --out"));
  EXPECT_EQ(*ReadFile(JoinPath(Path("other"), "notes.txt")), "keep me");
  r = Export(Path("out"), Path("out"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            absl::StrCat("eagle3 export: ", Path("out"), ": is the checkpoint being exported; choose another --out"));
}

// A float16 drafter is widened to float32 exactly.
TEST_F(Eagle3ExportTest, WidensHalfPrecision) {
  Source s = RandomSource(SmallDims());
  for (auto& [name, t] : s.tensors)
    if (t.scalar_type() == torch::kFloat32) t = t.to(torch::kFloat16);
  WriteSource(s, Path("src"));
  ASSERT_TRUE(Export(Path("src"), Path("out")).ok());
  auto file = SafetensorsFile::Open(JoinPath(Path("out"), kSafetensorsSingleName));
  ASSERT_TRUE(file.ok());
  auto fc = (*file)->Read("fc.weight");
  ASSERT_TRUE(fc.ok());
  EXPECT_EQ(fc->scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(*fc, TensorOf(s, "fc.weight").to(torch::kFloat32)));
}

// A quantized drafter (augur quantize's tensor names) exports the weights its kernels use:
// Dequantize(q) exactly, in float32; augur.json then names no scheme.
TEST_F(Eagle3ExportTest, DequantizesAQuantizedDrafter) {
  const Dims m = SmallDims();
  Source s = RandomSource(m);
  const auto scheme = ParseScheme("int4-g32");
  ASSERT_TRUE(scheme.ok());
  NamedTensors stored;
  std::map<std::string, at::Tensor> want;
  for (const TensorSpec& spec : Layout(m)) {
    const at::Tensor& w = TensorOf(s, spec.name);
    if (!spec.linear) {
      stored.emplace_back(spec.name, w);
      continue;
    }
    const QuantizedWeight q = QuantizeRtn(w, *scheme);
    const std::string stem = spec.name.substr(0, spec.name.size() - 7);
    stored.emplace_back(stem + ".qweight", q.qweight);
    stored.emplace_back(stem + ".scales", q.scales);
    stored.emplace_back(stem + ".zeros", q.zeros);
    want[spec.name] = Dequantize(q);
  }
  s.tensors = stored;
  s.meta["quantization"] = "int4-g32";
  s.st_metadata["augur_quantization"] = "int4-g32";
  WriteSource(s, Path("src"));
  auto summary = Export(Path("src"), Path("out"));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->source_quantization, "int4-g32");
  auto file = SafetensorsFile::Open(JoinPath(Path("out"), kSafetensorsSingleName));
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(want.size(), 9u);  // fc, q, k, v, o, gate, up, down, lm_head
  Source original = RandomSource(m);
  for (const auto& [name, w] : want) {
    auto got = (*file)->Read(name);
    ASSERT_TRUE(got.ok()) << name;
    EXPECT_TRUE(torch::equal(*got, w)) << name;
    // and not the float weight it came from (the check can tell the two apart)
    EXPECT_FALSE(torch::equal(*got, TensorOf(original, name))) << name;
  }
  const json meta = ReadJsonFile(JoinPath(Path("out"), "augur.json"));
  EXPECT_TRUE(meta["quantization"].is_null());
  EXPECT_EQ(meta["extra"]["export"]["source_quantization"], "int4-g32");

  // The scheme in the file must agree with augur.json's.
  s.st_metadata["augur_quantization"] = "int8";
  WriteSource(s, Path("mixed"));
  auto r = Export(Path("mixed"), Path("mixed-out"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), absl::StrCat("eagle3 export: ", Path("mixed"), "/model.safetensors: __metadata__ "
                                               "augur_quantization 'int8' differs from augur.json's 'int4-g32'"));
}

TEST_F(Eagle3ExportTest, RefusesWhatIsNotAnEagleDrafter) {
  const std::string bad = Path("bad");
  auto msg = [&](const std::string& problem) { return absl::StrCat("eagle3 export: ", bad, ": ", problem); };
  EXPECT_EQ(ExportError([](Source& s) { s.meta["kind"] = "ar-drafter"; }),
            msg("augur.json kind is 'ar-drafter', not 'eagle-drafter'; --format eagle3 exports a checkpoint of "
                "`augur distill eagle`"));
  EXPECT_EQ(ExportError([](Source& s) { s.meta["extra"].erase("eagle"); }),
            absl::StrCat("eagle3 export: ", bad, "/augur.json: extra.eagle is missing (target_layers, "
                         "target_hidden_size, target_num_layers, target_vocab_size)"));
  EXPECT_EQ(ExportError([](Source& s) { s.meta["extra"]["eagle"]["target_layers"] = {1, 6, 4}; }),
            absl::StrCat("eagle3 export: ", bad, "/augur.json extra.eagle: target layer 6 is outside [0, 6) (the id "
                         "of the target layer whose input is tapped)"));
  EXPECT_EQ(ExportError([](Source& s) { s.meta["extra"]["eagle"]["target_layers"] = {3, 1, 4}; }),
            absl::StrCat("eagle3 export: ", bad, "/augur.json extra.eagle: 'target_layers' [3,1,4] must be strictly "
                         "increasing"));
  EXPECT_EQ(ExportError([](Source& s) { s.config.erase("rms_norm_eps"); }),
            absl::StrCat("eagle3 export: ", bad, "/config.json: 'rms_norm_eps' is missing"));
  EXPECT_EQ(ExportError([](Source& s) { s.config["num_hidden_layers"] = 2; }),
            absl::StrCat("eagle3 export: ", bad, "/config.json: num_hidden_layers 2: an EAGLE-3 drafter has one "
                         "decoder layer"));
  EXPECT_EQ(ExportError([](Source& s) { s.meta["extra"]["eagle"]["target_hidden_size"] = 64; }),
            msg("hidden_size 32 differs from the target's 64: the drafter embeds tokens with the target's "
                "embedding, so they must match"));
}

TEST_F(Eagle3ExportTest, RefusesBadTensors) {
  const std::string bad = Path("bad");
  auto msg = [&](const std::string& problem) { return absl::StrCat("eagle3 export: ", bad, ": ", problem); };
  auto drop = [](const std::string& name) {
    return [name](Source& s) {
      NamedTensors kept;
      for (auto& nt : s.tensors)
        if (nt.first != name) kept.push_back(nt);
      s.tensors = kept;
    };
  };
  EXPECT_EQ(ExportError(drop("midlayer.mlp.up_proj.weight")),
            msg("tensor midlayer.mlp.up_proj.weight is missing (SwiGLU up)"));
  EXPECT_EQ(ExportError(drop("d2t")), msg("tensor d2t is missing (the draft -> target vocabulary map)"));
  EXPECT_EQ(ExportError([](Source& s) { TensorOf(s, "fc.weight") = torch::zeros({32, 64}); }),
            msg("tensor fc.weight has shape [32,64] but [d, 3*dt] = [32,96] is expected"));
  EXPECT_EQ(ExportError([](Source& s) { TensorOf(s, "t2d") = TensorOf(s, "t2d").to(torch::kInt32); }),
            msg("tensor t2d has dtype I32; BOOL is expected"));
  EXPECT_EQ(ExportError([](Source& s) { TensorOf(s, "norm.weight")[3] = std::nan(""); }),
            msg("tensor norm.weight has non-finite values"));
  EXPECT_EQ(ExportError([](Source& s) { s.tensors.emplace_back("embed_tokens.weight", torch::zeros({40, 32})); }),
            msg("unexpected tensor embed_tokens.weight (the export has no embedding: engines use the target's)"));
  EXPECT_EQ(ExportError([](Source& s) { s.tensors.emplace_back("midlayer.extra", torch::zeros({2})); }),
            msg("unexpected tensor midlayer.extra (not part of the EAGLE-3 layout, docs/FORMATS.md)"));
  // Draft ids 23 -> target 40 (past V = 40), two draft ids on one target, t2d off by one id.
  EXPECT_EQ(ExportError([](Source& s) { TensorOf(s, "d2t")[23] = 40 - 23; }),
            msg("d2t[23] = 17 maps draft id 23 to target id 40, outside the target vocabulary [0, 40)"));
  const int64_t t0 = DraftTargets(SmallDims())[0];
  EXPECT_EQ(ExportError([&](Source& s) { TensorOf(s, "d2t")[1] = t0 - 1; }),
            msg(absl::StrCat("d2t maps two draft ids to target id ", t0, " (draft id 1)")));
  EXPECT_EQ(ExportError([&](Source& s) { TensorOf(s, "t2d")[t0] = false; }),
            msg(absl::StrCat("t2d[", t0, "] is false but d2t maps a draft id to target id ", t0)));
  // A failed export leaves nothing behind.
  for (const std::string& name : ListDir(root_)) EXPECT_EQ(name, "bad") << "left behind: " << name;
}

}  // namespace
}  // namespace augur::eagle3
