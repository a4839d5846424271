#include "quantize/gguf_model_meta.h"

#include <absl/strings/match.h>
#include <absl/strings/str_join.h>

#include <map>
#include <set>

#include "core/one_line.h"
#include "quantize/gguf_export.h"

namespace augur::gguf {
namespace {

absl::Status Bad(const std::string& path, const std::string& msg) {
  return absl::InvalidArgumentError(OneLine(absl::StrCat("gguf import: ", path, ": ", msg)));
}

std::string ShapeText(const std::vector<int64_t>& shape) { return absl::StrCat("[", absl::StrJoin(shape, ","), "]"); }

absl::StatusOr<int64_t> IntOr(const GgufFile& f, const std::string& key, int64_t fallback) {
  if (!f.Has(key)) return fallback;
  AUGUR_ASSIGN_OR_RETURN(int64_t v, f.GetI64(key));
  return v;
}

absl::StatusOr<int64_t> RequireInt(const GgufFile& f, const std::string& key) {
  AUGUR_ASSIGN_OR_RETURN(int64_t v, f.GetI64(key));
  if (v <= 0 || v >= (int64_t(1) << 31))
    return Bad(f.path(), absl::StrCat("metadata ", key, " = ", v, " is out of range"));
  return v;
}

// The tokenizer.ggml.* metadata as the BPE tokenizer's input.
}  // namespace

absl::StatusOr<GgufBpeVocab> ReadGgufBpeVocab(const GgufFile& f) {
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
std::vector<std::pair<std::string, std::string>> ExpectedGgufTensors(const ModelConfig& c, bool qkv_bias) {
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

namespace {

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

}  // namespace

absl::StatusOr<ModelConfig> ReadGgufModelConfig(const GgufFile& f, const Architecture& arch, int64_t n_tokens) {
  const std::string a = arch.gguf;
  ModelConfig c;
  c.architecture = arch.hf;
  AUGUR_ASSIGN_OR_RETURN(c.num_hidden_layers, RequireInt(f, a + ".block_count"));
  // Each layer has at least 9 tensors (2 norms, q/k/v/o, gate/up/down), plus the embedding
  // and the final norm: a larger block_count cannot describe this file, and would otherwise
  // make ExpectedGgufTensors build billions of names.
  const int64_t n_file_tensors = static_cast<int64_t>(f.tensors().size());
  if (c.num_hidden_layers > (n_file_tensors - 2) / 9)
    return Bad(f.path(), absl::StrCat("metadata ", a, ".block_count = ", c.num_hidden_layers, " needs at least ",
                                      9 * c.num_hidden_layers + 2, " tensors but the file has ", n_file_tensors));
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
absl::Status CheckGgufTensors(const GgufFile& f, const ModelConfig& c, const Architecture& arch) {
  const auto expected = ExpectedGgufTensors(c, arch.qkv_bias);
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
      return Bad(f.path(), absl::StrCat("tensor '", g, "' has shape ", ShapeText(t->shape()), " but the metadata implies ",
                                        ShapeText(want)));
  }
  for (const auto& t : f.tensors())
    if (!names.count(t.name))
      return Bad(f.path(), absl::StrCat("tensor count disagrees with the architecture: ", arch.gguf, " with ",
                                        c.num_hidden_layers, " layers has ", expected.size(), " tensors, the file ",
                                        f.tensors().size(), "; unexpected tensor '", t.name, "'"));
  return absl::OkStatus();
}

// Declared in gguf_export.h; here so that the torch-free import checks can use it.
std::string GgufTensorName(const std::string& hf) {
  static const std::map<std::string, std::string> kTop = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  static const std::map<std::string, std::string> kLayer = {
      {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},         {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},    {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},          {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
  };
  if (auto it = kTop.find(hf); it != kTop.end()) return it->second;
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) return "";
  const std::string rest = hf.substr(dot + 1);
  const size_t last = rest.rfind('.');
  if (last == std::string::npos) return "";
  auto it = kLayer.find(rest.substr(0, last));
  const std::string suffix = rest.substr(last + 1);
  if (it == kLayer.end() || (suffix != "weight" && suffix != "bias")) return "";
  return absl::StrCat("blk.", layer, ".", it->second, ".", suffix);
}

}  // namespace augur::gguf
