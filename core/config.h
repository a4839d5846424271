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

// The architectures augur runs, each described once: how config.json, GGUF and the model
// code name it, and what differs between them. Everything that asks "which architecture"
// reads this table.
struct Architecture {
  const char* hf;          // config.json "architectures"[0]
  const char* model_type;  // config.json "model_type" (when "architectures" is absent)
  const char* gguf;        // GGUF general.architecture (llama.cpp's name)
  bool qkv_bias;           // q/k/v carry biases (config.json attention_bias default; GGUF import)
  bool o_bias;             // attention_bias puts a bias on o_proj too (transformers' Llama)
  bool permuted_qk;        // llama.cpp's converter permutes q/k rows (adjacent-pair rotary)
};
const std::vector<Architecture>& Architectures();
// nullptr when augur does not run it.
const Architecture* FindArchitecture(std::string_view hf);
const Architecture* FindArchitectureByModelType(std::string_view model_type);
const Architecture* FindArchitectureByGguf(std::string_view gguf);
// "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM" (field: hf, model_type or gguf).
std::string ArchitectureList(const char* Architecture::*field = &Architecture::hf);

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

  // This config's row of Architectures() (Validate() guarantees there is one).
  const Architecture& arch() const;
  // o_proj has a bias (attention_bias on an architecture whose o_proj takes it).
  bool o_proj_bias() const { return attention_bias && arch().o_bias; }
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
