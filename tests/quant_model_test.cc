// Quantized models: logits equal those of the dequantized fp32 model, the KV-cache decode path
// runs quantized, checkpoints round-trip, GPTQ over a model, and every bad input the loader and
// `augur quantize` refuse (one-line messages, non-zero exit).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "core/checkpoint.h"
#include "core/fs.h"
#include "datasets/token_store_writer.h"
#include "runtime/qlinear.h"
#include "quantize/quantize_model.h"
#include "tests/tiny_model.h"
#include "tests/exact_kernels.h"

namespace augur {
namespace {

[[maybe_unused]] const auto* const kExact = ::testing::AddGlobalTestEnvironment(new ExactKernels);

class TempDir {
 public:
  TempDir() : path_(MakeTempDir("augur_quant_")) {}
  ~TempDir() { RemoveTree(path_); }
  std::string sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// intermediate 96 is not a multiple of 64 or 128: down_proj's input is padded.
ModelConfig TinyConfig(bool tied, const std::string& arch = "LlamaForCausalLM") {
  ModelConfig c;
  c.architecture = arch;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  c.attention_bias = arch == "Qwen2ForCausalLM";
  return c;
}

LlamaModel MakeModel(const ModelConfig& c, uint64_t seed = 7) { return tiny::Random(c, seed, 2.5); }  // logits of order 1
using tiny::Ids;

void ClearBackends(LlamaModel& m) {
  for (auto& s : ModelLinears(m, true)) s.backend->reset();
}

QuantizedLinears Rtn(LlamaModel& m, const QuantScheme& scheme, bool keep_head) {
  QuantizeModelOptions o;
  o.scheme = scheme;
  o.keep_head = keep_head;
  o.progress = false;
  auto q = QuantizeModel(m, o, at::Tensor());
  EXPECT_TRUE(q.ok()) << q.status();
  return *q;
}

// Logits of the model running quantized kernels equal the fp32 model whose weights are the
// dequantized ones, to 1e-4 (float32 summation order only; logits are of order 1-10).
TEST(QuantModel, LogitsMatchDequantizedModel) {
  for (bool tied : {false, true})
    for (const auto& e : SchemeTable())
      for (bool keep_head : {true, false}) {
        LlamaModel m = MakeModel(TinyConfig(tied, tied ? "LlamaForCausalLM" : "Qwen2ForCausalLM"));
        const at::Tensor ids = Ids(2, 9, 97, 1);
        const at::Tensor fp32 = m->logits(ids);
        const QuantizedLinears q = Rtn(m, e.scheme, keep_head);
        EXPECT_EQ(q.size(), 14u + (keep_head ? 0 : 1));
        InstallQuantized(m, q);
        const at::Tensor quant = m->logits(ids);
        ClearBackends(m);
        at::Tensor deq_logits;
        {
          torch::NoGradGuard g;
          if (!keep_head && tied) {  // the tied head's dequantized copy is not in the embedding
            ForwardOptions fo;
            fo.hidden_layers = {2};
            auto out = m->forward(ids, nullptr, fo);
            deq_logits = at::linear(out.hidden[0], Dequantize(q.at(kHeadName)));
          } else {
            deq_logits = m->logits(ids);
          }
        }
        const float diff = (quant - deq_logits).abs().max().item<float>();
        EXPECT_LT(diff, 1e-4) << e.name << " tied " << tied << " keep_head " << keep_head;
        // Quantization did change the model (the test would pass trivially otherwise).
        EXPECT_GT((quant - fp32).abs().max().item<float>(), 1e-4) << e.name;
      }
}

TEST(QuantModel, Q8KernelsStayCloseToDequantizedModel) {
  if (!qkernels::Avx2Available()) GTEST_SKIP() << "no AVX2: the int8-activation kernels do not run here";
  // 18 rows would take the dequantize-then-GEMM route (no activation rounding): turn it off.
  const int64_t min_rows = DequantGemmMinRows();
  SetDequantGemmMinRows(0);
  LlamaModel m = MakeModel(TinyConfig(false));
  const at::Tensor ids = Ids(2, 9, 97, 1);
  const at::Tensor fp32 = m->logits(ids);
  InstallQuantized(m, Rtn(m, QuantScheme{4, 32}, false));
  const at::Tensor exact = m->logits(ids);
  std::vector<qkernels::CpuKernel> kernels = {qkernels::CpuKernel::kAvx2Q8};
  if (qkernels::Avx512VnniAvailable()) kernels.push_back(qkernels::CpuKernel::kAvx512Vnni);
  for (const qkernels::CpuKernel k : kernels) {
    qkernels::SetDefaultCpuKernel(k);
    const at::Tensor q8 = m->logits(ids);
    // Activation rounding moves the logits far less than weight quantization did.
    const double d_q8 = (q8 - exact).abs().max().item<double>(), d_w = (exact - fp32).abs().max().item<double>();
    EXPECT_GT(d_q8, 0.0) << qkernels::CpuKernelName(k);
    EXPECT_LT(d_q8, 0.25 * d_w) << qkernels::CpuKernelName(k) << " q8 " << d_q8 << " weights " << d_w;
  }
  qkernels::SetDefaultCpuKernel(qkernels::CpuKernel::kAvx2);
  SetDequantGemmMinRows(min_rows);
}

TEST(QuantModel, CachedDecodeEqualsFullForward) {
  LlamaModel m = MakeModel(TinyConfig(true));
  InstallQuantized(m, Rtn(m, QuantScheme{4, 32}, false));
  torch::NoGradGuard g;
  const at::Tensor ids = Ids(1, 12, 97, 2);
  const at::Tensor full = m->logits(ids);
  KVCache cache = m->new_cache(1, 32);
  m->forward(ids.narrow(1, 0, 8), &cache);
  for (int64_t t = 8; t < 12; ++t) {
    const at::Tensor step = m->forward(ids.narrow(1, t, 1), &cache).logits;
    EXPECT_LT((step[0][0] - full[0][t]).abs().max().item<float>(), 1e-4) << t;
  }
}

TEST(QuantModel, SaveLoadRoundTrip) {
  for (bool tied : {false, true})
    for (const QuantScheme scheme : {QuantScheme{8, 0}, QuantScheme{4, 64}}) {
      TempDir tmp;
      LlamaModel m = MakeModel(TinyConfig(tied, "Qwen2ForCausalLM"));
      const QuantizedLinears q = Rtn(m, scheme, /*keep_head=*/tied);
      AugurMeta meta;
      meta.kind = "ar-drafter";
      meta.tokenizer_fingerprint = "fp-a";
      QuantizationInfo info{"rtn", !tied, {}};
      ASSERT_TRUE(SaveQuantizedCheckpoint(m, q, scheme, info, meta, tmp.sub("q"), "").ok());
      InstallQuantized(m, q);
      const at::Tensor ids = Ids(2, 7, 97, 3);
      const at::Tensor before = m->logits(ids);

      auto loaded = LoadQuantizedModel(tmp.sub("q"), torch::kCPU, scheme.name());
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      EXPECT_EQ(loaded->meta.kind, "ar-drafter");
      EXPECT_EQ(loaded->meta.quantization, scheme.name());
      EXPECT_EQ(loaded->meta.extra["quantization"]["method"], "rtn");
      EXPECT_EQ(loaded->linears.size(), q.size());
      for (const auto& [name, w] : q) {
        EXPECT_TRUE(at::equal(loaded->linears.at(name).qweight, w.qweight)) << name;
        EXPECT_TRUE(at::equal(loaded->linears.at(name).scales, w.scales)) << name;
      }
      EXPECT_TRUE(at::equal(loaded->model->logits(ids), before));
      // Core's loader refuses it.
      auto core = LoadCheckpoint(tmp.sub("q"));
      ASSERT_FALSE(core.ok());
      EXPECT_NE(std::string(core.status().message()).find("is quantized"), std::string::npos);
      // The file is smaller than the fp32 weights it replaces.
      auto st = ReadFile(tmp.sub("q/model.safetensors"));
      const int64_t fp32 = m->config().num_parameters() * 4;
      EXPECT_LT(static_cast<int64_t>(st->size()), fp32) << scheme.name();
    }
}

void ExpectLoadError(const std::string& dir, const std::string& message, const std::string& expect = "") {
  auto r = LoadQuantizedModel(dir, torch::kCPU, expect);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(std::string(r.status().message()), message);
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

TEST(QuantModel, LoaderRefusesMismatches) {
  TempDir tmp;
  LlamaModel m = MakeModel(TinyConfig(true));
  ASSERT_TRUE(SaveCheckpoint(m, AugurMeta(), tmp.sub("fp32")).ok());
  ExpectLoadError(tmp.sub("fp32"), "quantized checkpoint: " + tmp.sub("fp32") +
                                       ": is not quantized (augur.json quantization is null); load it with LoadCheckpoint");
  const QuantScheme g32{4, 32};
  ASSERT_TRUE(SaveQuantizedCheckpoint(m, Rtn(m, g32, true), g32, {"rtn", false, {}}, AugurMeta(), tmp.sub("q"), "").ok());
  ExpectLoadError(tmp.sub("q"), "quantized checkpoint: " + tmp.sub("q") + ": is quantized as int4-g32, expected int8",
                  "int8");
  // augur.json claims another scheme than the tensors were written with.
  auto text = ReadFile(tmp.sub("q/augur.json"));
  auto replace_all = [](std::string s, const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
    return s;
  };
  std::string changed = replace_all(*text, "\"int4-g32\"", "\"int4-g64\"");
  WriteText(tmp.sub("q/augur.json"), changed);
  ExpectLoadError(tmp.sub("q"), "quantized checkpoint: " + tmp.sub("q/model.safetensors") +
                                    ": records scheme 'int4-g32' but augur.json says int4-g64");
  changed = replace_all(*text, "\"int4-g32\"", "\"int5-g32\"");
  WriteText(tmp.sub("q/augur.json"), changed);
  ExpectLoadError(tmp.sub("q"), "quantized checkpoint: " + tmp.sub("q/augur.json") +
                                    ": quantize: unknown scheme 'int5-g32' (one of int8, int4-g32, int4-g64, int4-g128)");
}

// A token store with a given tokenizer fingerprint, 40 train documents of random ids.
void WriteStore(const std::string& path, const std::string& fingerprint, int64_t vocab) {
  TokenStoreInfo info;
  info.tokenizer_fingerprint = fingerprint;
  info.vocab_size = vocab;
  info.bos_id = 1;
  info.eos_id = 2;
  info.sources = "[\"quant test\"]";
  info.valid_fraction = 0.1;
  auto w = TokenStoreWriter::Create(path, info);
  ASSERT_TRUE(w.ok()) << w.status();
  std::mt19937 rng(5);
  for (int d = 0; d < 40; ++d) {
    std::vector<int32_t> doc = {1};
    for (int i = 0; i < 60; ++i) doc.push_back(5 + static_cast<int32_t>(rng() % (vocab - 5)));
    doc.push_back(2);
    ASSERT_TRUE((*w)->Add(doc, d % 10 == 0 ? Split::kValid : Split::kTrain, "d" + std::to_string(d)).ok());
  }
  ASSERT_TRUE((*w)->Finish().ok());
}

TEST(QuantModel, GptqModelBeatsRtnOnCalibrationText) {
  TempDir tmp;
  WriteStore(tmp.sub("s.h5"), "fp-a", 97);
  auto calib = LoadCalibration(tmp.sub("s.h5"), "fp-a", 16, 32, 0);
  ASSERT_TRUE(calib.ok()) << calib.status();
  EXPECT_EQ(calib->sizes(), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(std::string(LoadCalibration(tmp.sub("s.h5"), "fp-b", 16, 32, 0).status().message()),
            "quantize: " + tmp.sub("s.h5") +
                ": calibration store was made with tokenizer fp-a but the model uses fp-b; build the store with the "
                "model's tokenizer (augur data build --tokenizer MODEL_DIR)");

  LlamaModel m = MakeModel(TinyConfig(false));
  torch::NoGradGuard g;
  const at::Tensor fp32 = m->logits(*calib);
  auto error_of = [&](const QuantizedLinears& q) {
    InstallQuantized(m, q);
    const double e = (m->logits(*calib) - fp32).norm().item<double>();
    ClearBackends(m);
    return e;
  };
  QuantizeModelOptions o;
  o.scheme = QuantScheme{4, 32};
  o.keep_head = false;
  o.progress = false;
  o.method = "gptq";
  auto gptq = QuantizeModel(m, o, *calib);
  ASSERT_TRUE(gptq.ok()) << gptq.status();
  // QuantizeModel leaves the model's weights and slots as they were.
  EXPECT_TRUE(at::equal(m->logits(*calib), fp32));
  // Keep the fp32 weights for the RTN run: InstallQuantized overwrote them with GPTQ's.
  LlamaModel fresh = MakeModel(TinyConfig(false));
  const QuantizedLinears rtn = Rtn(fresh, o.scheme, false);
  const double e_gptq = error_of(*gptq);
  LlamaModel m2 = MakeModel(TinyConfig(false));
  InstallQuantized(m2, rtn);
  const double e_rtn = (m2->logits(*calib) - fp32).norm().item<double>();
  EXPECT_LT(e_gptq, e_rtn) << "gptq " << e_gptq << " rtn " << e_rtn;
}

// ---- the CLI ------------------------------------------------------------------------------

struct ShellRun {
  int rc = -1;
  std::string err;
};

ShellRun Shell(const std::string& cmd, const TempDir& tmp) {
  ShellRun r;
  r.rc = std::system((cmd + " >/dev/null 2>" + tmp.sub("stderr.txt")).c_str());
  r.err = *ReadFile(tmp.sub("stderr.txt"));
  return r;
}

TEST(QuantCli, QuantizesAndRefusesBadInput) {
  const char* bin = std::getenv("AUGUR_BIN");
  if (bin == nullptr || !FileExists(bin)) GTEST_SKIP() << "AUGUR_BIN is not set or not built (run through ctest)";
  TempDir tmp;
  const std::string augur = std::string(bin) + " quantize --threads 1";
  LlamaModel m = MakeModel(TinyConfig(true));
  AugurMeta meta;
  meta.kind = "ar-drafter";
  meta.tokenizer_fingerprint = "fp-a";
  ASSERT_TRUE(SaveCheckpoint(m, meta, tmp.sub("fp32")).ok());
  WriteStore(tmp.sub("a.h5"), "fp-a", 97);
  WriteStore(tmp.sub("b.h5"), "fp-b", 97);
  const std::string base = augur + " --model " + tmp.sub("fp32");

  ShellRun r = Shell(base + " --scheme int4 --group 64 --method gptq --calib " + tmp.sub("a.h5") +
                         " --calib-samples 8 --seq-len 16 --act-order --block 64 --keep-head no --out " + tmp.sub("q"),
                     tmp);
  ASSERT_EQ(r.rc, 0) << r.err;
  auto q = LoadQuantizedModel(tmp.sub("q"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->scheme.name(), "int4-g64");
  EXPECT_EQ(q->linears.size(), 15u);  // 14 decoder linears + the head
  EXPECT_EQ(q->meta.extra["quantization"]["method"], "gptq");
  EXPECT_EQ(q->meta.extra["quantization"]["settings"]["act_order"], true);
  EXPECT_EQ(q->meta.kind, "ar-drafter");

  auto expect_error = [&](const std::string& flags, const std::string& message) {
    ShellRun e = Shell(base + " " + flags, tmp);
    EXPECT_NE(e.rc, 0) << flags;
    EXPECT_EQ(e.err, "augur quantize: " + message + "\n") << flags;
  };
  const std::string out = " --out " + tmp.sub("bad");
  // Quantizing a quantized checkpoint.
  ShellRun again = Shell(augur + " --model " + tmp.sub("q") + " --scheme int8" + out, tmp);
  EXPECT_NE(again.rc, 0);
  EXPECT_EQ(again.err, "augur quantize: " + tmp.sub("q") +
                           ": is already quantized (int4-g64); quantize the fp32 checkpoint it came from\n");
  expect_error("--scheme int4 --group 48" + out, "quantize: --group 48 is not 32, 64 or 128");
  expect_error("--scheme int8 --group 32" + out,
               "quantize: --group applies to int4 only (int8 has one scale per output row)");
  expect_error("--scheme fp8" + out, "quantize: unknown --scheme 'fp8' (int8 or int4)");
  expect_error("--scheme int8 --method awq" + out, "unknown --method 'awq' (rtn or gptq)");
  expect_error("--scheme int8 --method gptq" + out, "--method gptq needs --calib FILE.h5 (a token store)");
  expect_error("--scheme int8 --calib " + tmp.sub("a.h5") + out, "--calib is used by --method gptq only");
  expect_error("--scheme int8 --keep-head maybe" + out, "--keep-head 'maybe' is not yes or no");
  expect_error("--scheme int4 --method gptq --calib " + tmp.sub("b.h5") + out,
               "quantize: " + tmp.sub("b.h5") +
                   ": calibration store was made with tokenizer fp-b but the model uses fp-a; build the store with "
                   "the model's tokenizer (augur data build --tokenizer MODEL_DIR)");
  expect_error("--scheme int4 --group 64 --method gptq --block 96 --calib " + tmp.sub("a.h5") + out,
               "gptq: model.layers.0.self_attn.q_proj: --block 96 must be a positive multiple of the group size 64");
  EXPECT_FALSE(FileExists(tmp.sub("bad/augur.json")));
  // RTN int8 through the CLI: loads and keeps the head in fp32 by default.
  r = Shell(base + " --scheme int8" + out, tmp);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(LoadQuantizedModel(tmp.sub("bad"))->linears.size(), 14u);
}

}  // namespace
}  // namespace augur
