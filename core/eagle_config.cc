#include "core/eagle_config.h"

#include <nlohmann/json.hpp>

#include "core/fs.h"

namespace augur {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& source, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("eagle config: ", source, ": ", problem));
}

// Reads `key` into `out` when present and not null; `required` makes absence an error.
template <typename T>
absl::Status Get(const json& j, const char* key, T* out, const std::string& source, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Bad(source, absl::StrCat("has no \"", key, "\""));
    return absl::OkStatus();
  }
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return Bad(source, absl::StrCat("field \"", key, "\" has the wrong type (", it->dump(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int64_t> EagleConfig::DefaultLayers(int64_t n) { return {2, n / 2, n - 3}; }

absl::StatusOr<EagleConfig> EagleConfig::ForTarget(const ModelConfig& t, std::vector<int64_t> layers,
                                                   int64_t draft_vocab) {
  EagleConfig c;
  c.hidden_size = t.hidden_size;
  c.intermediate_size = t.intermediate_size;
  c.num_attention_heads = t.num_attention_heads;
  c.num_key_value_heads = t.num_key_value_heads;
  c.head_dim = t.head_dim_or_default();
  c.rms_norm_eps = t.rms_norm_eps;
  c.rope_theta = t.rope_theta;
  c.max_position_embeddings = t.max_position_embeddings;
  c.vocab_size = t.vocab_size;
  c.draft_vocab_size = draft_vocab > 0 ? draft_vocab : t.vocab_size;
  c.target_hidden_size = t.hidden_size;
  c.target_num_layers = t.num_hidden_layers;
  c.target_layers = layers.empty() ? DefaultLayers(t.num_hidden_layers) : std::move(layers);
  c.bos_token_id = t.bos_token_id;
  c.eos_token_id = t.eos_token_id;
  AUGUR_RETURN_IF_ERROR(c.Validate("the target's shape"));
  return c;
}

absl::Status EagleConfig::Validate(const std::string& source) const {
  if (hidden_size <= 0 || intermediate_size <= 0 || num_attention_heads <= 0 || num_key_value_heads <= 0 ||
      head_dim <= 0)
    return Bad(source, "hidden_size, intermediate_size, heads and head_dim must be positive");
  if (num_attention_heads % num_key_value_heads != 0)
    return Bad(source, absl::StrCat("num_attention_heads ", num_attention_heads,
                                    " is not a multiple of num_key_value_heads ", num_key_value_heads));
  if (head_dim % 2 != 0) return Bad(source, absl::StrCat("head_dim ", head_dim, " is odd (rotary needs pairs)"));
  if (vocab_size <= 0 || draft_vocab_size <= 0 || draft_vocab_size > vocab_size)
    return Bad(source, absl::StrCat("draft_vocab_size ", draft_vocab_size, " must be in [1, vocab_size ", vocab_size,
                                    "]"));
  if (target_hidden_size <= 0 || target_num_layers <= 0)
    return Bad(source, "target_hidden_size and the target's layer count must be positive");
  if (target_layers.size() != 3)
    return Bad(source, absl::StrCat("needs 3 target layers (low, middle, high), got ", target_layers.size()));
  for (int64_t l : target_layers)
    if (l < 0 || l > target_num_layers)
      return Bad(source, absl::StrCat("target layer ", l, " is outside [0, ", target_num_layers, "]"));
  if (max_position_embeddings <= 0) return Bad(source, "max_position_embeddings must be positive");
  if (!(rms_norm_eps > 0) || !(rope_theta > 0)) return Bad(source, "rms_norm_eps and rope_theta must be positive");
  return absl::OkStatus();
}

absl::Status EagleConfig::CheckTarget(const ModelConfig& t, const std::string& what) const {
  if (t.hidden_size != target_hidden_size || t.num_hidden_layers != target_num_layers || t.vocab_size != vocab_size)
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": made for a target of hidden size ", target_hidden_size, ", ", target_num_layers, " layers, vocabulary ",
        vocab_size, " but this target has ", t.hidden_size, ", ", t.num_hidden_layers, ", ", t.vocab_size));
  return absl::OkStatus();
}

ModelConfig EagleConfig::LayerConfig() const {
  ModelConfig m;
  m.vocab_size = vocab_size;
  m.hidden_size = hidden_size;
  m.intermediate_size = intermediate_size;
  m.num_hidden_layers = 1;
  m.num_attention_heads = num_attention_heads;
  m.num_key_value_heads = num_key_value_heads;
  m.head_dim = head_dim;
  m.max_position_embeddings = max_position_embeddings;
  m.rms_norm_eps = rms_norm_eps;
  m.rope_theta = rope_theta;
  m.tie_word_embeddings = false;
  return m;
}

json EagleConfig::ToJson() const {
  json j;
  j["architectures"] = {kEagle3Architecture};
  j["model_type"] = "llama";
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["num_hidden_layers"] = 1;
  j["hidden_act"] = "silu";
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["max_position_embeddings"] = max_position_embeddings;
  j["vocab_size"] = vocab_size;
  j["draft_vocab_size"] = draft_vocab_size;
  j["target_hidden_size"] = target_hidden_size;
  j["tie_word_embeddings"] = false;
  j["attention_bias"] = false;
  j["torch_dtype"] = torch_dtype;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  // vLLM and llama.cpp's converter read the top-level key (id i: the state entering layer i,
  // as augur numbers it). SGLang reads only eagle_config's and adds 1 to each id, so its copy
  // is one lower for the same taps (docs/FORMATS.md, "EAGLE-3 export").
  j["eagle_aux_hidden_state_layer_ids"] = target_layers;
  std::vector<int64_t> sglang;
  for (int64_t l : target_layers) sglang.push_back(l - 1);
  j["eagle_config"] = {{"eagle_aux_hidden_state_layer_ids", sglang}, {"use_aux_hidden_state", true},
                       {"use_input_layernorm_in_first_layer", true}, {"use_last_layernorm", true}};
  // Not read by serving engines; augur checks a target against it.
  j["augur_target_num_layers"] = target_num_layers;
  return j;
}

absl::StatusOr<EagleConfig> EagleConfig::FromJson(const json& j, const std::string& source) {
  if (!j.is_object()) return Bad(source, "not a JSON object");
  EagleConfig c;
  AUGUR_RETURN_IF_ERROR(Get(j, "hidden_size", &c.hidden_size, source, true));
  AUGUR_RETURN_IF_ERROR(Get(j, "intermediate_size", &c.intermediate_size, source, true));
  AUGUR_RETURN_IF_ERROR(Get(j, "num_attention_heads", &c.num_attention_heads, source, true));
  c.num_key_value_heads = c.num_attention_heads;
  AUGUR_RETURN_IF_ERROR(Get(j, "num_key_value_heads", &c.num_key_value_heads, source, false));
  if (c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  AUGUR_RETURN_IF_ERROR(Get(j, "head_dim", &c.head_dim, source, false));
  AUGUR_RETURN_IF_ERROR(Get(j, "rms_norm_eps", &c.rms_norm_eps, source, false));
  AUGUR_RETURN_IF_ERROR(Get(j, "rope_theta", &c.rope_theta, source, false));
  AUGUR_RETURN_IF_ERROR(Get(j, "max_position_embeddings", &c.max_position_embeddings, source, true));
  AUGUR_RETURN_IF_ERROR(Get(j, "vocab_size", &c.vocab_size, source, true));
  c.draft_vocab_size = c.vocab_size;
  AUGUR_RETURN_IF_ERROR(Get(j, "draft_vocab_size", &c.draft_vocab_size, source, false));
  c.target_hidden_size = c.hidden_size;
  AUGUR_RETURN_IF_ERROR(Get(j, "target_hidden_size", &c.target_hidden_size, source, false));
  AUGUR_RETURN_IF_ERROR(Get(j, "augur_target_num_layers", &c.target_num_layers, source, true));
  AUGUR_RETURN_IF_ERROR(Get(j, "eagle_aux_hidden_state_layer_ids", &c.target_layers, source, false));
  if (c.target_layers.empty() && j.contains("eagle_config") && j["eagle_config"].is_object()) {
    // SGLang's copy: each id one lower than the tap it means.
    AUGUR_RETURN_IF_ERROR(
        Get(j["eagle_config"], "eagle_aux_hidden_state_layer_ids", &c.target_layers, source, false));
    for (int64_t& l : c.target_layers) ++l;
  }
  if (c.target_layers.empty()) c.target_layers = DefaultLayers(c.target_num_layers);
  AUGUR_RETURN_IF_ERROR(Get(j, "bos_token_id", &c.bos_token_id, source, false));
  AUGUR_RETURN_IF_ERROR(Get(j, "eos_token_id", &c.eos_token_id, source, false));
  AUGUR_RETURN_IF_ERROR(Get(j, "torch_dtype", &c.torch_dtype, source, false));
  int64_t layers = 1;
  AUGUR_RETURN_IF_ERROR(Get(j, "num_hidden_layers", &layers, source, false));
  if (layers != 1) return Bad(source, absl::StrCat("num_hidden_layers is ", layers, "; an EAGLE-3 drafter has 1"));
  std::string act = "silu";
  AUGUR_RETURN_IF_ERROR(Get(j, "hidden_act", &act, source, false));
  if (act != "silu") return Bad(source, absl::StrCat("hidden_act \"", act, "\" is not silu"));
  AUGUR_RETURN_IF_ERROR(c.Validate(source));
  return c;
}

absl::StatusOr<EagleConfig> EagleConfig::FromFile(const std::string& path) {
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(path, "not valid JSON");
  return FromJson(j, path);
}

}  // namespace augur
