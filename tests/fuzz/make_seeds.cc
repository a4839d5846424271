// fuzz_seeds OUT_DIR: writes the seed corpora, small valid files made by augur's own writers,
// to OUT_DIR/corpus/<target>/ and the tiny tokenizer the prompts target loads to
// OUT_DIR/data/. scripts/fuzz.sh --seeds runs it with OUT_DIR = tests/fuzz; the output is
// deterministic, so the checked-in files change only when a writer does.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "core/bpe_tokenizer.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/eagle_config.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
#include "datasets/teacher_store.h"
#include "datasets/token_store.h"
#include "datasets/token_store_writer.h"
#include "quantize/gguf_quant.h"
#include "quantize/gguf_writer.h"

namespace augur {
namespace {

using json = nlohmann::json;

void Die(const std::string& what) {
  std::fprintf(stderr, "fuzz_seeds: %s\n", what.c_str());
  std::exit(1);
}
void Check(const absl::Status& st) {
  if (!st.ok()) Die(st.ToString());
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) Die("cannot write " + path);
}

std::string Read(const std::string& path) {
  auto s = ReadFile(path);
  if (!s.ok()) Die(s.status().ToString());
  return *s;
}

std::string Dir(const std::string& out, const std::string& target) {
  const std::string d = out + "/corpus/" + target;
  ::mkdir((out + "/corpus").c_str(), 0755);
  ::mkdir(d.c_str(), 0755);
  return d;
}

// GPT-2's byte-to-character map (printable Latin-1 bytes stand for themselves, the others
// for U+0100 upward), as UTF-8.
std::string ByteChar(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A byte-level BPE vocabulary: the 256 byte tokens, a few merges, ChatML specials.
GgufBpeVocab TinyVocab(const std::string& pre) {
  GgufBpeVocab v;
  v.model = "gpt2";
  v.pre = pre;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(ByteChar(b));
  const std::string sp = ByteChar(' ');
  for (const std::string& t : {std::string("he"), std::string("ll"), std::string("hell"), sp + "w", std::string("or"),
                               sp + "wor", std::string("ld")})
    v.tokens.push_back(t);
  v.merges = {"h e", "l l", "he ll", sp + " w", "o r", sp + "w or", "l d"};
  v.token_types.assign(v.tokens.size(), 1);
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    v.tokens.push_back(s);
    v.token_types.push_back(3);
  }
  v.bos_id = static_cast<int32_t>(v.tokens.size()) - 2;  // <|im_start|>
  v.eos_id = static_cast<int32_t>(v.tokens.size()) - 1;  // <|im_end|>
  v.pad_id = static_cast<int32_t>(v.tokens.size()) - 3;
  return v;
}

BpeTokenizer TinyTokenizer(const std::string& pre) {
  auto t = BpeTokenizer::FromGgufVocab(TinyVocab(pre), "fuzz_seeds");
  if (!t.ok()) Die(t.status().ToString());
  return *t;
}

void Safetensors(const std::string& dir) {
  NamedTensors all;
  all.emplace_back("f32", at::arange(6, at::kFloat).reshape({2, 3}));
  all.emplace_back("f16", at::arange(4, at::kFloat).to(at::kHalf));
  all.emplace_back("bf16", at::arange(3, at::kFloat).to(at::kBFloat16));
  all.emplace_back("f64", at::arange(2, at::kDouble));
  all.emplace_back("i8", at::arange(-2, 2, at::kChar));
  all.emplace_back("u8", at::arange(5, at::kByte));
  all.emplace_back("i32", at::arange(3, at::kInt));
  all.emplace_back("i64", at::arange(2, at::kLong).reshape({1, 2, 1}));
  all.emplace_back("bool", at::arange(4, at::kLong).remainder(2).to(at::kBool));
  all.emplace_back("empty", at::zeros({0, 4}, at::kFloat));
  all.emplace_back("scalar", at::ones({}, at::kFloat));
  Check(WriteSafetensors(dir + "/dtypes.safetensors", all, {{"kind", "seed"}}));
  Check(WriteSafetensors(dir + "/one.safetensors", {{"model.norm.weight", at::ones({8}, at::kFloat)}}));
  Check(WriteSafetensors(dir + "/none.safetensors", {}));
}

std::vector<uint8_t> Encoded(gguf::GgmlType type, int64_t n, float scale) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = scale * std::sin(0.37f * static_cast<float>(i + 1));
  std::vector<uint8_t> out;
  if (gguf::IsWritable(type)) {
    gguf::QuantizeRow(type, x.data(), n, &out);
  } else {
    // Read-only types (K-quants, q4_1, q5_*): deterministic bytes of the right size; every
    // bit pattern is a valid block.
    out.resize(gguf::RowBytes(type, n));
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>((i * 37 + 11) & 0xFF);
  }
  return out;
}

void Gguf(const std::string& dir) {
  using gguf::GgmlType;
  {  // every metadata value type and one tensor of every type augur reads
    gguf::GgufWriter w;
    w.SetU8("t.u8", 200);
    w.SetI8("t.i8", -100);
    w.SetU16("t.u16", 60000);
    w.SetI16("t.i16", -30000);
    w.SetU32("t.u32", 4000000000u);
    w.SetI32("t.i32", -2000000000);
    w.SetU64("t.u64", 18000000000000000000ull);
    w.SetI64("t.i64", -9000000000000000000ll);
    w.SetF32("t.f32", 0.1f);
    w.SetF64("t.f64", 0.1);
    w.SetBool("t.bool", true);
    w.SetString("t.str", "hello");
    w.SetStringArray("t.strs", {"a", "", "ccc"});
    w.SetF32Array("t.f32s", {1.5f, -2.0f});
    w.SetI32Array("t.i32s", {-1, 0, 7});
    for (const gguf::GgmlTypeTraits& tr : gguf::GgmlTypeTable()) {
      const int64_t n = tr.block_size;
      w.AddTensor(std::string("t.") + tr.name, {1, n}, tr.type, Encoded(tr.type, n, 1.0f));
    }
    Check(w.Write(dir + "/types.gguf"));
  }
  {  // a one-layer llama with a tokenizer: what `augur import --gguf` reads
    const GgufBpeVocab v = TinyVocab("smollm");
    const int64_t vocab = static_cast<int64_t>(v.tokens.size()), d = 32, ff = 64, heads = 2;
    gguf::GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetString("general.name", "fuzz seed");
    w.SetU32("llama.block_count", 1);
    w.SetU32("llama.embedding_length", d);
    w.SetU32("llama.feed_forward_length", ff);
    w.SetU32("llama.attention.head_count", heads);
    w.SetU32("llama.attention.head_count_kv", 1);
    w.SetU32("llama.context_length", 256);
    w.SetU32("llama.rope.dimension_count", d / heads);
    w.SetF32("llama.rope.freq_base", 10000.0f);
    w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.SetString("tokenizer.ggml.model", v.model);
    w.SetString("tokenizer.ggml.pre", v.pre);
    w.SetStringArray("tokenizer.ggml.tokens", v.tokens);
    w.SetI32Array("tokenizer.ggml.token_type", v.token_types);
    w.SetStringArray("tokenizer.ggml.merges", v.merges);
    w.SetU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
    w.SetU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
    w.SetBool("tokenizer.ggml.add_bos_token", false);
    w.SetString("tokenizer.chat_template", Read(std::string(AUGUR_FUZZ_DIR) + "/../data/chat_templates/smollm2-135m-instruct.jinja"));
    const int64_t kv = d / heads;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, GgmlType type) {
      int64_t n = 1;
      for (int64_t s : shape) n *= s;
      std::vector<uint8_t> bytes;
      const int64_t row = shape.back();
      for (int64_t r = 0; r < n / row; ++r) {
        std::vector<uint8_t> one = Encoded(type, row, 0.1f * static_cast<float>(r + 1));
        bytes.insert(bytes.end(), one.begin(), one.end());
      }
      w.AddTensor(name, shape, type, std::move(bytes));
    };
    add("token_embd.weight", {vocab, d}, GgmlType::kQ8_0);
    add("blk.0.attn_norm.weight", {d}, GgmlType::kF32);
    add("blk.0.attn_q.weight", {d, d}, GgmlType::kQ4_0);
    add("blk.0.attn_k.weight", {kv, d}, GgmlType::kQ4_1);
    add("blk.0.attn_v.weight", {kv, d}, GgmlType::kQ8_0);
    add("blk.0.attn_output.weight", {d, d}, GgmlType::kF16);
    add("blk.0.ffn_norm.weight", {d}, GgmlType::kF32);
    add("blk.0.ffn_gate.weight", {ff, d}, GgmlType::kQ5_0);
    add("blk.0.ffn_up.weight", {ff, d}, GgmlType::kQ5_1);
    add("blk.0.ffn_down.weight", {d, ff}, GgmlType::kBF16);
    add("output_norm.weight", {d}, GgmlType::kF32);
    Check(w.Write(dir + "/llama.gguf"));
  }
}

void TokenizerJson(const std::string& dir, const std::string& data_dir) {
  int i = 0;
  for (const char* pre : {"smollm", "gpt-2", "llama-bpe", "qwen2", "default"}) {
    auto t = BpeTokenizer::FromGgufVocab(TinyVocab(pre), "fuzz_seeds");
    if (!t.ok()) continue;  // a pre-tokenizer name this build does not know
    Write(dir + "/tiny-" + std::to_string(i++) + ".json", t->ToTokenizerJson());
  }
  // The prompts target's tokenizer, with a ChatML template beside it.
  ::mkdir(data_dir.c_str(), 0755);
  Write(data_dir + "/tokenizer.json", TinyTokenizer("smollm").ToTokenizerJson());
  json cfg = {{"tokenizer_class", "PreTrainedTokenizerFast"}, {"bos_token", "<|im_start|>"},
              {"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"}, {"add_bos_token", false},
              {"chat_template", Read(std::string(AUGUR_FUZZ_DIR) + "/../data/chat_templates/smollm2-135m-instruct.jinja")}};
  Write(data_dir + "/tokenizer_config.json", cfg.dump(2) + "\n");
}

void BpeEncode(const std::string& dir) {
  const std::vector<std::string> texts = {
      "def f(x):\n    return x + 1\n",
      "Hello, world! It's 2026-12-02; 3.14159 and 1e10.",
      "héllo wörld, 世界, ελληνικά, русский, 🙂👍🏽",
      "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
      "\t\t  \n\n   trailing   spaces   ",
      std::string("bad utf8 \xff\xfe \xc3 end \xed\xa0\x80 surrogate \xf4\x90\x80\x80"),
  };
  for (size_t i = 0; i < texts.size(); ++i) Write(dir + "/text-" + std::to_string(i) + ".txt", texts[i]);
}

void ChatTemplate(const std::string& dir) {
  const std::string src = std::string(AUGUR_FUZZ_DIR) + "/../data/chat_templates/";
  for (const char* f : {"gemma-2-2b-it.jinja", "llama-2-7b-chat.jinja", "llama-3.1-8b-instruct.jinja",
                        "llama-3.2-3b-instruct.jinja", "mistral-7b-instruct-v0.2.jinja",
                        "mixtral-8x7b-instruct-v0.1.jinja", "qwen2.5-7b-instruct.jinja", "smollm2-135m-instruct.jinja"})
    Write(dir + "/" + f, Read(src + f));
  const std::vector<json> convs = {
      json::array({{{"role", "user"}, {"content", "Hello"}}}),
      json::array({{{"role", "system"}, {"content", "Be brief."}}, {{"role", "user"}, {"content", "2+2?"}},
                   {{"role", "assistant"}, {"content", "4"}}, {{"role", "user"}, {"content", "and 3+3?"}}}),
      json::array({{{"role", "user"}, {"content", "<s>[INST] tricky </s> 世界\n"}}, {{"role", "assistant"}, {"content", ""}}}),
  };
  for (size_t i = 0; i < convs.size(); ++i) Write(dir + "/messages-" + std::to_string(i) + ".json", convs[i].dump());
}

void ConfigJson(const std::string& dir) {
  int i = 0;
  for (const ModelPreset& p : ModelPresets()) {
    if (i >= 3) break;
    Write(dir + "/" + p.name + ".json", p.config.ToJson().dump(2));
    ++i;
  }
  ModelConfig qwen = ModelPresets().front().config;
  qwen.architecture = "Qwen2ForCausalLM";
  qwen.attention_bias = true;
  Write(dir + "/qwen2.json", qwen.ToJson().dump(2));
  ModelConfig mistral = ModelPresets().front().config;
  mistral.architecture = "MistralForCausalLM";
  mistral.sliding_window = 128;
  Write(dir + "/mistral.json", mistral.ToJson().dump(2));
  const ModelConfig& target = ModelPresets().front().config;
  auto eagle = EagleConfig::ForTarget(target, EagleConfig::DefaultLayers(target.num_hidden_layers), 256);
  if (!eagle.ok()) Die(eagle.status().ToString());
  Write(dir + "/eagle.json", eagle->ToJson().dump(2));
  AugurMeta meta;
  meta.kind = kKindNatDrafter;
  meta.gamma = 4;
  meta.mask_token_id = 3;
  meta.quantization = "int4-g32";
  meta.target_fingerprint = "0123abcd";
  meta.command_line = "augur distill nat --out x";
  meta.extra = {{"quantization", {{"scheme", "int4-g32"}}}};
  Write(dir + "/augur.json", meta.ToJson().dump(2));
  Write(dir + "/augur-target.json", AugurMeta().ToJson().dump(2));
}

void PromptsJsonl(const std::string& dir) {
  Write(dir + "/prompts.jsonl",
        "{\"prompt\": \"hello world\", \"kind\": \"code\"}\n"
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"kind\": \"chat\"}\n"
        "\n"
        "{\"prompt\": \"def f():\\n\\treturn 1\", \"text\": \"corpus text\"}\n");
  Write(dir + "/corpus.jsonl", "{\"text\": \"one document\"}\n{\"text\": \"two\", \"prompt\": \"p\"}\n");
}

void TokenStoreSeed(const std::string& dir) {
  const BpeTokenizer tok = TinyTokenizer("smollm");
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = tok.fingerprint();
  meta.vocab_size = tok.vocab_size();
  meta.bos_id = tok.bos_id();
  meta.eos_id = tok.eos_id();
  meta.sources = "[\"fuzz seed\"]";
  meta.valid_fraction = 0.5;
  meta.created_by = "fuzz_seeds";
  ::unlink((dir + "/store.h5").c_str());  // the writers refuse to overwrite
  auto w = TokenStoreWriter::Create(dir + "/store.h5", meta);
  if (!w.ok()) Die(w.status().ToString());
  Check((*w)->Add(tok.Encode("hello world"), Split::kTrain, "a.py"));
  Check((*w)->Add(tok.Encode("hell or ld"), Split::kValid, "b.py"));
  Check((*w)->Add(tok.Encode("x"), Split::kTrain, "docs.jsonl:3"));
  Check((*w)->Finish());
}

void TeacherStoreSeed(const std::string& dir) {
  TeacherStoreInfo info;
  info.target_fingerprint = "0123456789abcdef";
  info.tokenizer_fingerprint = TinyTokenizer("smollm").fingerprint();
  info.vocab_size = 266;
  info.top_k = 3;
  info.mode = "greedy";
  info.generation = "max-new 4";
  info.source = "fuzz seed";
  info.created_by = "fuzz_seeds";
  const std::string path = dir + "/teacher.h5";
  ::unlink(path.c_str());
  auto w = TeacherStoreWriter::Create(path, info);
  if (!w.ok()) Die(w.status().ToString());
  for (int64_t s = 0; s < 2; ++s) {
    TeacherSequence seq;
    seq.prompt_index = s;
    seq.prompt_len = 2;
    const int64_t len = 4 + s;
    for (int64_t i = 0; i < len; ++i) {
      seq.tokens.push_back(static_cast<int32_t>(10 + i + s));
      for (int64_t k = 0; k < info.top_k; ++k) {
        seq.topk_ids.push_back(static_cast<int32_t>(20 + k + i));
        seq.topk_logprobs.push_back(-1.0f - static_cast<float>(k));
      }
      seq.rest_logmass.push_back(-3.0f);
    }
    Check((*w)->Add(seq));
  }
  Check((*w)->Finish());
}

}  // namespace
}  // namespace augur

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR (tests/fuzz)\n");
    return 2;
  }
  using namespace augur;
  const std::string out = argv[1];
  Safetensors(Dir(out, "safetensors"));
  Gguf(Dir(out, "gguf"));
  TokenizerJson(Dir(out, "tokenizer_json"), out + "/data");
  BpeEncode(Dir(out, "bpe_encode"));
  ChatTemplate(Dir(out, "chat_template"));
  ConfigJson(Dir(out, "config_json"));
  PromptsJsonl(Dir(out, "prompts_jsonl"));
  TokenStoreSeed(Dir(out, "token_store"));
  TeacherStoreSeed(Dir(out, "teacher_store"));
  std::printf("fuzz_seeds: wrote %s/corpus and %s/data\n", out.c_str(), out.c_str());
  return 0;
}
