#include "quantize/gguf_import.h"

#include <absl/strings/match.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdio>
#include <set>
#include <vector>

#include "core/bpe_tokenizer.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/fs.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "core/tokenizer.h"
#include "quantize/gguf_export.h"
#include "quantize/gguf_reader.h"

namespace augur::gguf {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& path, const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat("gguf import: ", path, ": ", msg));
}

absl::StatusOr<int64_t> IntOr(const GgufFile& f, const std::string& key, int64_t fallback) {
  if (!f.Has(key)) return fallback;
  AUGUR_ASSIGN_OR_RETURN(int64_t v, f.GetI64(key));
  return v;
}

absl::StatusOr<int64_t> RequireInt(const GgufFile& f, const std::string& key) {
  AUGUR_ASSIGN_OR_RETURN(int64_t v, f.GetI64(key));
  if (v <= 0 || v > (int64_t(1) << 31))
    return Bad(f.path(), absl::StrCat("metadata ", key, " = ", v, " is out of range"));
  return v;
}

// The tokenizer.ggml.* metadata as the BPE tokenizer's input.
absl::StatusOr<GgufBpeVocab> ReadBpeVocab(const GgufFile& f) {
  GgufBpeVocab v;
  AUGUR_ASSIGN_OR_RETURN(v.model, f.GetString("tokenizer.ggml.model"));
  if (v.model != "gpt2")
    return absl::UnimplementedError(absl::StrCat(
        "gguf import: ", f.path(), ": tokenizer model '", v.model,
        "' is not supported (augur imports byte-level BPE tokenizers, tokenizer.ggml.model = gpt2)"));
  v.pre = "default";
  if (f.Has("tokenizer.ggml.pre")) {
    AUGUR_ASSIGN_OR_RETURN(v.pre, f.GetString("tokenizer.ggml.pre"));
  }
  AUGUR_ASSIGN_OR_RETURN(v.tokens, f.GetStringArray("tokenizer.ggml.tokens"));
  AUGUR_ASSIGN_OR_RETURN(v.merges, f.GetStringArray("tokenizer.ggml.merges"));
  if (f.Has("tokenizer.ggml.token_type")) {
    AUGUR_ASSIGN_OR_RETURN(v.token_types, f.GetI32Array("tokenizer.ggml.token_type"));
  }
  auto id = [&](const char* key, int32_t* out) -> absl::Status {
    if (!f.Has(key)) return absl::OkStatus();
    AUGUR_ASSIGN_OR_RETURN(int64_t x, f.GetI64(key));
    if (x < 0 || x >= static_cast<int64_t>(v.tokens.size()))
      return Bad(f.path(), absl::StrCat("metadata ", key, " = ", x, " is outside the vocabulary of ", v.tokens.size()));
    *out = static_cast<int32_t>(x);
    return absl::OkStatus();
  };
  AUGUR_RETURN_IF_ERROR(id("tokenizer.ggml.bos_token_id", &v.bos_id));
  AUGUR_RETURN_IF_ERROR(id("tokenizer.ggml.eos_token_id", &v.eos_id));
  AUGUR_RETURN_IF_ERROR(id("tokenizer.ggml.padding_token_id", &v.pad_id));
  AUGUR_RETURN_IF_ERROR(id("tokenizer.ggml.unknown_token_id", &v.unk_id));
  if (f.Has("tokenizer.ggml.add_bos_token")) {
    AUGUR_ASSIGN_OR_RETURN(v.add_bos, f.GetBool("tokenizer.ggml.add_bos_token"));
  }
  return v;
}

// The HF name of every tensor the architecture implies, keyed by its GGUF name.
std::vector<std::pair<std::string, std::string>> ExpectedTensors(const ModelConfig& c, bool qkv_bias) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& hf) { out.emplace_back(GgufTensorName(hf), hf); };
  add("model.embed_tokens.weight");
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    for (const char* w : {"input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                          "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
                          "mlp.down_proj"})
      add(p + w + ".weight");
    if (qkv_bias)
      for (const char* b : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}) add(p + b + ".bias");
  }
  add("model.norm.weight");
  if (!c.tie_word_embeddings) add("lm_head.weight");
  return out;
}

std::vector<int64_t> ExpectedShape(const ModelConfig& c, const std::string& hf) {
  const int64_t d = c.hidden_size, hd = c.head_dim_or_default();
  const int64_t q = c.num_attention_heads * hd, kv = c.num_key_value_heads * hd;
  auto ends = [&](const char* s) { return absl::EndsWith(hf, s); };
  if (hf == "model.embed_tokens.weight" || hf == "lm_head.weight") return {c.vocab_size, d};
  if (ends("layernorm.weight") || hf == "model.norm.weight") return {d};
  if (ends("q_proj.weight")) return {q, d};
  if (ends("k_proj.weight") || ends("v_proj.weight")) return {kv, d};
  if (ends("q_proj.bias")) return {q};
  if (ends("k_proj.bias") || ends("v_proj.bias")) return {kv};
  if (ends("o_proj.weight")) return {d, q};
  if (ends("gate_proj.weight") || ends("up_proj.weight")) return {c.intermediate_size, d};
  if (ends("down_proj.weight")) return {d, c.intermediate_size};
  return {};
}

absl::StatusOr<ModelConfig> ReadConfig(const GgufFile& f, const Architecture& arch, int64_t n_tokens) {
  const std::string a = arch.gguf;
  ModelConfig c;
  c.architecture = arch.hf;
  AUGUR_ASSIGN_OR_RETURN(c.num_hidden_layers, RequireInt(f, a + ".block_count"));
  AUGUR_ASSIGN_OR_RETURN(c.hidden_size, RequireInt(f, a + ".embedding_length"));
  AUGUR_ASSIGN_OR_RETURN(c.intermediate_size, RequireInt(f, a + ".feed_forward_length"));
  AUGUR_ASSIGN_OR_RETURN(c.num_attention_heads, RequireInt(f, a + ".attention.head_count"));
  AUGUR_ASSIGN_OR_RETURN(c.num_key_value_heads, IntOr(f, a + ".attention.head_count_kv", c.num_attention_heads));
  AUGUR_ASSIGN_OR_RETURN(c.max_position_embeddings, IntOr(f, a + ".context_length", 4096));
  AUGUR_ASSIGN_OR_RETURN(c.head_dim, IntOr(f, a + ".attention.key_length", c.hidden_size / c.num_attention_heads));
  AUGUR_ASSIGN_OR_RETURN(c.vocab_size, IntOr(f, a + ".vocab_size", n_tokens));
  if (c.vocab_size != n_tokens)
    return Bad(f.path(), absl::StrCat(a, ".vocab_size ", c.vocab_size, " differs from the ", n_tokens,
                                      " tokens of tokenizer.ggml.tokens"));
  if (f.Has(a + ".attention.value_length")) {
    AUGUR_ASSIGN_OR_RETURN(int64_t vl, f.GetI64(a + ".attention.value_length"));
    if (vl != c.head_dim) return Bad(f.path(), absl::StrCat("value_length ", vl, " != key_length ", c.head_dim, " is not supported"));
  }
  if (f.Has(a + ".rope.dimension_count")) {
    AUGUR_ASSIGN_OR_RETURN(int64_t rd, f.GetI64(a + ".rope.dimension_count"));
    if (rd != c.head_dim)
      return Bad(f.path(), absl::StrCat("partial rotary embedding (rope.dimension_count ", rd, " of head size ",
                                        c.head_dim, ") is not supported"));
  }
  c.rope_theta = 10000.0;
  if (f.Has(a + ".rope.freq_base")) {
    AUGUR_ASSIGN_OR_RETURN(c.rope_theta, f.GetF32(a + ".rope.freq_base"));
  }
  AUGUR_ASSIGN_OR_RETURN(float eps, f.GetF32(a + ".attention.layer_norm_rms_epsilon"));
  c.rms_norm_eps = eps;
  if (f.Has(a + ".rope.scaling.type")) {
    AUGUR_ASSIGN_OR_RETURN(std::string t, f.GetString(a + ".rope.scaling.type"));
    if (t != "none") return Bad(f.path(), absl::StrCat("rope scaling '", t, "' is not supported"));
  }
  if (f.FindTensor("rope_freqs.weight"))
    return Bad(f.path(), "rope frequency factors (rope_freqs.weight, Llama-3.1-style rope scaling) are not supported");
  c.tie_word_embeddings = f.FindTensor("output.weight") == nullptr;
  c.attention_bias = arch.qkv_bias;
  c.torch_dtype = "float32";
  AUGUR_RETURN_IF_ERROR(c.Validate(f.path()));
  return c;
}

// Checks that the file holds exactly the tensors the architecture implies, with its shapes.
absl::Status CheckTensors(const GgufFile& f, const ModelConfig& c, const Architecture& arch) {
  const auto expected = ExpectedTensors(c, arch.qkv_bias);
  std::set<std::string> names;
  for (const auto& [g, hf] : expected) {
    names.insert(g);
    const TensorInfo* t = f.FindTensor(g);
    if (!t)
      return Bad(f.path(), absl::StrCat("tensor count disagrees with the architecture: ", arch.gguf, " with ",
                                        c.num_hidden_layers, " layers needs ", expected.size(), " tensors, and '", g,
                                        "' is missing (the file has ", f.tensors().size(), ")"));
    const std::vector<int64_t> want = ExpectedShape(c, hf);
    if (t->shape() != want)
      return Bad(f.path(), absl::StrCat("tensor '", g, "' has shape ", ShapeString(t->shape()), " but the metadata implies ",
                                        ShapeString(want)));
  }
  for (const auto& t : f.tensors())
    if (!names.count(t.name))
      return Bad(f.path(), absl::StrCat("tensor count disagrees with the architecture: ", arch.gguf, " with ",
                                        c.num_hidden_layers, " layers has ", expected.size(), " tensors, the file ",
                                        f.tensors().size(), "; unexpected tensor '", t.name, "'"));
  return absl::OkStatus();
}

json TokenizerConfig(const BpeTokenizer& tok, const GgufBpeVocab& v, const std::string& chat_template) {
  json cfg = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"add_bos_token", v.add_bos},
      {"add_eos_token", false},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", 1000000000},
  };
  auto name = [&](int32_t id) { return tok.IdToToken(id); };
  if (v.bos_id >= 0) cfg["bos_token"] = name(v.bos_id);
  if (v.eos_id >= 0) cfg["eos_token"] = name(v.eos_id);
  if (v.pad_id >= 0) cfg["pad_token"] = name(v.pad_id);
  if (v.unk_id >= 0) cfg["unk_token"] = name(v.unk_id);
  if (!chat_template.empty()) cfg["chat_template"] = chat_template;
  return cfg;
}

}  // namespace

void UnpermuteFromLlamaRope(const float* in, float* out, int64_t n_head, int64_t head_dim, int64_t cols) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t part = 0; part < 2; ++part)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t src = h * head_dim + 2 * i + part, dst = h * head_dim + part * half + i;
        std::copy(in + src * cols, in + (src + 1) * cols, out + dst * cols);
      }
}

absl::StatusOr<ImportSummary> ImportGguf(const std::string& gguf_path, const std::string& out_dir,
                                         const ImportOptions& options) {
  torch::Dtype dtype;
  if (options.dtype == "float32" || options.dtype == "f32") dtype = torch::kFloat32;
  else if (options.dtype == "bfloat16" || options.dtype == "bf16") dtype = torch::kBFloat16;
  else if (options.dtype == "float16" || options.dtype == "f16") dtype = torch::kFloat16;
  else return absl::InvalidArgumentError(absl::StrCat("gguf import: --dtype ", options.dtype, ": not one of f32, bf16, f16"));
  const std::string dtype_name = dtype == torch::kFloat32 ? "float32" : dtype == torch::kBFloat16 ? "bfloat16" : "float16";
  if (FileExists(out_dir) && !IsDirectory(out_dir))
    return absl::AlreadyExistsError(absl::StrCat("gguf import: ", out_dir, ": exists and is a file; choose a new --out"));
  if (IsDirectory(out_dir) && !ListDir(out_dir).empty())
    return absl::AlreadyExistsError(absl::StrCat("gguf import: ", out_dir,
                                                 ": exists and is not empty; choose a new --out (import never overwrites)"));

  AUGUR_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(gguf_path));
  AUGUR_ASSIGN_OR_RETURN(std::string arch_name, f.GetString("general.architecture"));
  // core/config.h's table: the HF architecture it is imported as, and whether llama.cpp's
  // converter permuted its q/k rows (the "llama" family, whose rotary embedding pairs adjacent
  // values; qwen2 uses the NEOX layout, which keeps HF's order).
  const Architecture* arch = FindArchitectureByGguf(arch_name);
  if (!arch)
    return absl::UnimplementedError(absl::StrCat("gguf import: ", gguf_path, ": architecture '", arch_name,
                                                 "' is not supported (augur imports ",
                                                 ArchitectureList(&Architecture::gguf), ")"));

  AUGUR_ASSIGN_OR_RETURN(GgufBpeVocab vocab, ReadBpeVocab(f));
  AUGUR_ASSIGN_OR_RETURN(BpeTokenizer tok, BpeTokenizer::FromGgufVocab(vocab, gguf_path));
  AUGUR_ASSIGN_OR_RETURN(ModelConfig cfg, ReadConfig(f, *arch, static_cast<int64_t>(vocab.tokens.size())));
  cfg.bos_token_id = vocab.bos_id;
  cfg.eos_token_id = vocab.eos_id;
  AUGUR_RETURN_IF_ERROR(CheckTensors(f, cfg, *arch));
  std::string chat_template;
  if (f.Has("tokenizer.chat_template")) {
    AUGUR_ASSIGN_OR_RETURN(chat_template, f.GetString("tokenizer.chat_template"));
  }

  ImportSummary summary;
  summary.architecture = cfg.architecture;
  summary.gguf_architecture = arch_name;
  AUGUR_ASSIGN_OR_RETURN(summary.sha256, Sha256File(gguf_path));

  // Everything goes into a sibling temporary directory that is renamed onto out_dir at the end.
  std::string parent = out_dir;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  const std::string tmp_dir = absl::StrCat(parent, ".tmp.", ::getpid());
  RemoveTree(tmp_dir);
  AUGUR_RETURN_IF_ERROR(MakeDirs(tmp_dir));
  auto fail = [&](absl::Status st) {
    RemoveTree(tmp_dir);
    return st;
  };

  torch::NoGradGuard no_grad;
  NamedTensors tensors;
  const auto expected = ExpectedTensors(cfg, arch->qkv_bias);
  Progress progress("import", static_cast<int64_t>(expected.size()), "tensors");
  int64_t done = 0;
  for (const auto& [gname, hf] : expected) {
    const TensorInfo& info = *f.FindTensor(gname);
    auto values = DequantizeTensor(f, info);
    if (!values.ok()) return fail(values.status());
    summary.types[GgmlTypeName(info.type)] += 1;
    summary.num_parameters += info.num_values();
    const std::vector<int64_t> shape = info.shape();
    at::Tensor t = torch::empty(shape, torch::kFloat32);
    const bool q = absl::EndsWith(hf, "q_proj.weight") || absl::EndsWith(hf, "q_proj.bias");
    const bool k = absl::EndsWith(hf, "k_proj.weight") || absl::EndsWith(hf, "k_proj.bias");
    if (arch->permuted_qk && (q || k)) {
      const int64_t heads = q ? cfg.num_attention_heads : cfg.num_key_value_heads;
      const int64_t cols = shape.size() == 2 ? shape[1] : 1;
      UnpermuteFromLlamaRope(values->data(), t.data_ptr<float>(), heads, cfg.head_dim_or_default(), cols);
    } else {
      std::copy(values->begin(), values->end(), t.data_ptr<float>());
    }
    tensors.emplace_back(hf, dtype == torch::kFloat32 ? t : t.to(dtype));
    if (options.progress) progress.update(++done, gname);
  }
  if (options.progress) progress.finish();
  summary.num_tensors = static_cast<int64_t>(tensors.size());

  if (auto st = WriteSafetensorsCheckpoint(tmp_dir, tensors, 0); !st.ok()) return fail(st);
  tensors.clear();
  auto write = [&](const std::string& name, const std::string& text) {
    return WriteFileAtomic(absl::StrCat(tmp_dir, "/", name), text);
  };
  const std::string tokenizer_json = tok.ToTokenizerJson();
  // The fingerprint recorded is that of the tokenizer.json written here, which is what every
  // later command loads (it identifies the same tokenizer by its vocabulary, merges, Split
  // steps and special tokens).
  auto written = BpeTokenizer::FromTokenizerJson(tokenizer_json, absl::StrCat(out_dir, "/", kTokenizerJsonFile));
  if (!written.ok()) return fail(written.status());
  if (auto st = write(kTokenizerJsonFile, tokenizer_json); !st.ok()) return fail(st);
  if (auto st = write("tokenizer_config.json", TokenizerConfig(tok, vocab, chat_template).dump(2) + "\n"); !st.ok())
    return fail(st);
  json gen = {{"_from_model_config", false}};
  if (vocab.bos_id >= 0) gen["bos_token_id"] = vocab.bos_id;
  if (vocab.eos_id >= 0) gen["eos_token_id"] = vocab.eos_id;
  if (vocab.pad_id >= 0) gen["pad_token_id"] = vocab.pad_id;
  if (auto st = write("generation_config.json", gen.dump(2) + "\n"); !st.ok()) return fail(st);
  cfg.torch_dtype = dtype_name;
  if (auto st = write("config.json", cfg.ToJson().dump(2) + "\n"); !st.ok()) return fail(st);

  AugurMeta meta;
  meta.kind = kKindTarget;
  meta.tokenizer_fingerprint = written->fingerprint();
  meta.command_line = options.command_line;
  json types = json::object();
  for (const auto& [name, n] : summary.types) types[name] = n;
  std::string general_name;
  if (f.Has("general.name")) general_name = f.GetString("general.name").value_or("");
  meta.extra["import"] = {{"source", gguf_path},       {"sha256", summary.sha256},
                          {"gguf_version", f.version()}, {"gguf_architecture", arch_name},
                          {"general_name", general_name}, {"tensor_types", types},
                          {"tokenizer_pre", vocab.pre},  {"dtype", dtype_name}};
  if (auto st = write("augur.json", meta.ToJson().dump(2) + "\n"); !st.ok()) return fail(st);

  if (IsDirectory(out_dir) && ::rmdir(out_dir.c_str()) != 0)
    return fail(absl::InternalError(absl::StrCat("gguf import: ", out_dir, ": cannot replace the empty directory")));
  if (std::rename(tmp_dir.c_str(), out_dir.c_str()) != 0)
    return fail(absl::InternalError(absl::StrCat("gguf import: cannot rename ", tmp_dir, " to ", out_dir)));
  return summary;
}

}  // namespace augur::gguf
