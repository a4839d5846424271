#include "core/config.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/fs.h"

namespace augur {
namespace {

using json = nlohmann::json;

// Reads `key` into `out` when present and not null; a wrong JSON type is an error.
template <typename T>
absl::Status Get(const json& j, const char* key, T* out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", source, ": field '", key, "' has the wrong type (", it->dump(), ")"));
  }
  return absl::OkStatus();
}

// bos/eos may be an int or a list of ints (the first is used).
absl::Status GetTokenId(const json& j, const char* key, int64_t* out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
    *out = (*it)[0].get<int64_t>();
    return absl::OkStatus();
  }
  return Get(j, key, out, source);
}

ModelConfig MakeConfig(int64_t vocab, int64_t hidden, int64_t inter, int64_t layers, int64_t heads,
                       int64_t kv_heads, int64_t max_pos) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = max_pos;
  return c;
}

}  // namespace

int64_t ModelConfig::num_parameters() const {
  const int64_t d = head_dim_or_default();
  const int64_t attn = hidden_size * d * (num_attention_heads * 2 + num_key_value_heads * 2) +
                       (attention_bias ? d * (num_attention_heads + 2 * num_key_value_heads) : 0);
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  const int64_t per_layer = attn + mlp + 2 * hidden_size;
  const int64_t embed = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return per_layer * num_hidden_layers + embed + hidden_size;
}

const std::vector<Architecture>& Architectures() {
  static const std::vector<Architecture> kTable = {
      // hf, model_type, gguf, qkv_bias, o_bias, permuted_qk
      {"LlamaForCausalLM", "llama", "llama", false, true, true},
      {"Qwen2ForCausalLM", "qwen2", "qwen2", true, false, false},
      {"MistralForCausalLM", "mistral", "mistral", false, false, true},
  };
  return kTable;
}

namespace {
const Architecture* FindBy(const char* Architecture::*field, std::string_view name) {
  for (const Architecture& a : Architectures())
    if (name == a.*field) return &a;
  return nullptr;
}
}  // namespace

const Architecture* FindArchitecture(std::string_view hf) { return FindBy(&Architecture::hf, hf); }
const Architecture* FindArchitectureByModelType(std::string_view t) { return FindBy(&Architecture::model_type, t); }
const Architecture* FindArchitectureByGguf(std::string_view g) { return FindBy(&Architecture::gguf, g); }

std::string ArchitectureList(const char* Architecture::*field) {
  std::string out;
  for (const Architecture& a : Architectures()) absl::StrAppend(&out, out.empty() ? "" : ", ", a.*field);
  return out;
}

const Architecture& ModelConfig::arch() const {
  const Architecture* a = FindArchitecture(architecture);
  AUGUR_CHECK(a != nullptr, "config: unsupported architecture '", architecture, "' (Validate() refuses it)");
  return *a;
}

absl::Status ModelConfig::Validate(const std::string& source) const {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", source, ": ", what));
  };
  if (FindArchitecture(architecture) == nullptr)
    return bad(absl::StrCat("unsupported architecture '", architecture, "' (supported: ", ArchitectureList(), ")"));
  if (vocab_size <= 0 || hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 ||
      num_attention_heads <= 0 || num_key_value_heads <= 0 || max_position_embeddings <= 0)
    return bad("sizes must be positive (vocab_size, hidden_size, intermediate_size, "
               "num_hidden_layers, num_attention_heads, num_key_value_heads, max_position_embeddings)");
  if (num_attention_heads % num_key_value_heads != 0)
    return bad(absl::StrCat("num_attention_heads ", num_attention_heads,
                            " is not a multiple of num_key_value_heads ", num_key_value_heads));
  if (head_dim <= 0 && hidden_size % num_attention_heads != 0)
    return bad(absl::StrCat("hidden_size ", hidden_size, " is not divisible by num_attention_heads ",
                            num_attention_heads, " and head_dim is not given"));
  if (head_dim_or_default() % 2 != 0) return bad("head_dim must be even (rotary embeddings)");
  if (rms_norm_eps <= 0 || rope_theta <= 0) return bad("rms_norm_eps and rope_theta must be positive");
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(const json& j, const std::string& source) {
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat("config: ", source, ": not a JSON object"));
  ModelConfig c;
  c.head_dim = 0;
  c.tie_word_embeddings = false;  // transformers' default for Llama when the key is absent
  std::string model_type;
  AUGUR_RETURN_IF_ERROR(Get(j, "model_type", &model_type, source));
  auto arch = j.find("architectures");
  if (arch != j.end() && arch->is_array() && !arch->empty() && (*arch)[0].is_string()) {
    c.architecture = (*arch)[0].get<std::string>();
  } else if (const Architecture* a = FindArchitectureByModelType(model_type)) {
    c.architecture = a->hf;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", source, ": no 'architectures' list and unknown model_type '", model_type,
                     "' (known: ", ArchitectureList(&Architecture::model_type), ")"));
  }
  AUGUR_RETURN_IF_ERROR(Get(j, "vocab_size", &c.vocab_size, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "hidden_size", &c.hidden_size, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "intermediate_size", &c.intermediate_size, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "num_hidden_layers", &c.num_hidden_layers, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "num_attention_heads", &c.num_attention_heads, source));
  c.num_key_value_heads = c.num_attention_heads;
  AUGUR_RETURN_IF_ERROR(Get(j, "num_key_value_heads", &c.num_key_value_heads, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "head_dim", &c.head_dim, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "max_position_embeddings", &c.max_position_embeddings, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "rms_norm_eps", &c.rms_norm_eps, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "rope_theta", &c.rope_theta, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "tie_word_embeddings", &c.tie_word_embeddings, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "attention_bias", &c.attention_bias, source));
  AUGUR_RETURN_IF_ERROR(GetTokenId(j, "bos_token_id", &c.bos_token_id, source));
  AUGUR_RETURN_IF_ERROR(GetTokenId(j, "eos_token_id", &c.eos_token_id, source));
  AUGUR_RETURN_IF_ERROR(Get(j, "torch_dtype", &c.torch_dtype, source));
  if (j.contains("dtype") && j["dtype"].is_string()) c.torch_dtype = j["dtype"].get<std::string>();
  const Architecture* a = FindArchitecture(c.architecture);
  if (a != nullptr && a->qkv_bias) c.attention_bias = true;  // Qwen2 always has q/k/v bias
  if (c.architecture == "MistralForCausalLM" || c.architecture == "Qwen2ForCausalLM") {
    bool use_sliding = c.architecture == "MistralForCausalLM";
    AUGUR_RETURN_IF_ERROR(Get(j, "use_sliding_window", &use_sliding, source));
    if (use_sliding) AUGUR_RETURN_IF_ERROR(Get(j, "sliding_window", &c.sliding_window, source));
  }
  std::string act = "silu";
  AUGUR_RETURN_IF_ERROR(Get(j, "hidden_act", &act, source));
  if (act != "silu")
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", source, ": hidden_act '", act, "' is not supported (only silu)"));
  bool mlp_bias = false;
  AUGUR_RETURN_IF_ERROR(Get(j, "mlp_bias", &mlp_bias, source));
  if (mlp_bias) return absl::InvalidArgumentError(absl::StrCat("config: ", source, ": mlp_bias=true is not supported"));
  // transformers 5 writes rope_parameters {rope_theta, rope_type} instead of top-level keys.
  auto rp = j.find("rope_parameters");
  if (rp != j.end() && rp->is_object()) {
    AUGUR_RETURN_IF_ERROR(Get(*rp, "rope_theta", &c.rope_theta, source));
    const std::string type = rp->value("rope_type", std::string("default"));
    if (type != "default")
      return absl::InvalidArgumentError(absl::StrCat("config: ", source, ": rope_parameters.rope_type '", type,
                                                     "' is not supported (only plain RoPE)"));
  }
  auto rs = j.find("rope_scaling");
  if (rs != j.end() && !rs->is_null()) {
    std::string type = rs->value("rope_type", rs->value("type", std::string("?")));
    if (type != "default")
      return absl::InvalidArgumentError(absl::StrCat("config: ", source, ": rope_scaling type '", type,
                                                     "' is not supported (only plain RoPE)"));
  }
  AUGUR_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

json ModelConfig::ToJson() const {
  json j;
  j["architectures"] = {architecture};
  const Architecture* a = FindArchitecture(architecture);
  j["model_type"] = a != nullptr ? a->model_type : "llama";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim_or_default();
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["rope_scaling"] = nullptr;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["initializer_range"] = 0.02;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["torch_dtype"] = torch_dtype;
  j["use_cache"] = true;
  if (architecture == "LlamaForCausalLM") {
    j["attention_bias"] = attention_bias;
    j["mlp_bias"] = false;
    j["pretraining_tp"] = 1;
  }
  if (architecture == "MistralForCausalLM")
    j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  if (architecture == "Qwen2ForCausalLM") {
    j["use_sliding_window"] = sliding_window > 0;
    j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
    j["max_window_layers"] = num_hidden_layers;
  }
  return j;
}

absl::StatusOr<ModelConfig> ModelConfig::FromFile(const std::string& path) {
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("config: ", path, ": not valid JSON"));
  return FromJson(j, path);
}

const std::vector<ModelPreset>& ModelPresets() {
  static const std::vector<ModelPreset> presets = [] {
    std::vector<ModelPreset> p;
    ModelConfig target_s = MakeConfig(4096, 256, 704, 6, 8, 4, 1024);
    target_s.tie_word_embeddings = true;
    p.push_back({"target-s", "5.5M-param target for a 2-core CPU (6 layers, d=256, GQA 8/4); trains in ~30 min",
                 target_s});
    ModelConfig draft_xs = MakeConfig(4096, 128, 352, 2, 4, 2, 1024);
    draft_xs.tie_word_embeddings = true;
    p.push_back({"draft-xs", "0.9M-param drafter (2 layers, d=128); distills in minutes on a CPU", draft_xs});
    ModelConfig draft_s = MakeConfig(4096, 192, 512, 3, 6, 2, 1024);
    draft_s.tie_word_embeddings = true;
    p.push_back({"draft-s", "2M-param drafter (3 layers, d=192)", draft_s});
    ModelConfig target_m = MakeConfig(32000, 768, 2048, 12, 12, 4, 2048);
    target_m.tie_word_embeddings = false;
    p.push_back({"target-m", "110M-param target for one GPU (12 layers, d=768, GQA 12/4)", target_m});
    ModelConfig target_l = MakeConfig(32000, 1536, 4096, 24, 16, 8, 4096);
    target_l.tie_word_embeddings = false;
    p.push_back({"target-l", "750M-param target for one large GPU (24 layers, d=1536)", target_l});
    return p;
  }();
  return presets;
}

absl::StatusOr<ModelConfig> ResolveModelConfig(const std::string& spec) {
  for (const auto& p : ModelPresets())
    if (p.name == spec) return p.config;
  if (IsDirectory(spec)) return ModelConfig::FromFile(spec + "/config.json");
  if (FileExists(spec)) return ModelConfig::FromFile(spec);
  std::string names;
  for (const auto& p : ModelPresets()) absl::StrAppend(&names, names.empty() ? "" : ", ", p.name);
  return absl::NotFoundError(absl::StrCat("config: '", spec, "' is neither a preset (", names,
                                          ") nor an existing config.json or checkpoint directory"));
}

}  // namespace augur
