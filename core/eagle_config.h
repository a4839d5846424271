// The configuration of an EAGLE-3 feature drafter (augur.json kind "eagle-drafter"): one
// decoder layer that reads three of the target's hidden states. Its config.json is the one
// serving engines load (vLLM's and SGLang's LlamaForCausalLMEagle3, llama.cpp's converter;
// docs/FORMATS.md "EAGLE-3 drafter"), so augur's checkpoint and its export share one layout.
//
// The drafter at position P reads the pair (token[P+1], g[P]): g is fc(concat of the target's
// hidden states at P) for a verified position, or the drafter's own pre-norm output at P
// while it drafts ahead. See core/eagle_head.h for the math.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/status.h"

namespace augur {

inline constexpr char kKindEagleDrafter[] = "eagle-drafter";
// config.json "architectures"[0] of an EAGLE-3 drafter, as vLLM and SGLang register it.
inline constexpr char kEagle3Architecture[] = "LlamaForCausalLMEagle3";

struct EagleConfig {
  int64_t hidden_size = 0;          // d: the drafter's width (augur: the target's)
  int64_t intermediate_size = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 0;
  int64_t vocab_size = 0;           // the target's vocabulary
  int64_t draft_vocab_size = 0;     // the head's rows (draft ids, mapped by d2t)
  int64_t target_hidden_size = 0;
  int64_t target_num_layers = 0;
  // The target's hidden states read, in this order (DecodeOptions::hidden_layers numbering:
  // i = output of layer i = the input of 0-based layer i = transformers' hidden_states[i];
  // config.json "eagle_aux_hidden_state_layer_ids").
  std::vector<int64_t> target_layers;
  int64_t bos_token_id = -1;
  int64_t eos_token_id = -1;
  std::string torch_dtype = "float32";

  // EAGLE-3's default taps of an L-layer target: low, middle and high (2, L/2, L-3).
  static std::vector<int64_t> DefaultLayers(int64_t target_layers);
  // A drafter sized like one layer of `target` (same width, heads and MLP), reading
  // `layers` (empty: the defaults), with a head of `draft_vocab` rows (0: the whole vocab).
  static absl::StatusOr<EagleConfig> ForTarget(const ModelConfig& target, std::vector<int64_t> layers,
                                               int64_t draft_vocab);

  absl::Status Validate(const std::string& source) const;
  // The target this drafter was made for has this shape; else a one-line error naming `what`.
  absl::Status CheckTarget(const ModelConfig& target, const std::string& what) const;
  // One layer of this width as a ModelConfig (the KV cache's and the rotary tables' shape).
  ModelConfig LayerConfig() const;

  // config.json (the serving layout) <-> EagleConfig; FromJson refuses what it cannot run.
  nlohmann::json ToJson() const;
  static absl::StatusOr<EagleConfig> FromJson(const nlohmann::json& j, const std::string& source);
  static absl::StatusOr<EagleConfig> FromFile(const std::string& path);
};

}  // namespace augur
