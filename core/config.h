// Model configuration: the fields of a Hugging Face LlamaForCausalLM / Qwen2ForCausalLM /
// MistralForCausalLM config.json, plus a preset table sized for this project's machines.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur {

struct ModelConfig {
  // "LlamaForCausalLM" | "Qwen2ForCausalLM" | "MistralForCausalLM".
  std::string architecture = "LlamaForCausalLM";
  int64_t vocab_size = 4096;
  int64_t hidden_size = 256;
  int64_t intermediate_size = 704;
  int64_t num_hidden_layers = 6;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 4;
  int64_t head_dim = 0;  // 0: hidden_size / num_attention_heads
  int64_t max_position_embeddings = 1024;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = true;
  bool attention_bias = false;  // q/k/v bias (Qwen2 has it always)
  int64_t sliding_window = 0;   // Mistral; 0 = none
  int64_t bos_token_id = 1;
  int64_t eos_token_id = 2;
  std::string torch_dtype = "float32";

  int64_t head_dim_or_default() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  // Parameter count (embeddings counted once when tied).
  int64_t num_parameters() const;

  // Checks internal consistency; `source` names where the config came from for messages.
  absl::Status Validate(const std::string& source) const;

  // HF config.json <-> ModelConfig. Unknown keys are ignored; unsupported architectures,
  // rope scaling types, or hidden_act values are refused with a message naming `source`.
  static absl::StatusOr<ModelConfig> FromJson(const nlohmann::json& j, const std::string& source);
  nlohmann::json ToJson() const;
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);
};

// Named presets (target-s, draft-xs, ...). Each has a one-line description for --help.
struct ModelPreset {
  std::string name;
  std::string description;
  ModelConfig config;
};
const std::vector<ModelPreset>& ModelPresets();

// `spec` is a preset name, a path to a config.json, or a checkpoint directory holding one.
absl::StatusOr<ModelConfig> ResolveModelConfig(const std::string& spec);

}  // namespace augur
