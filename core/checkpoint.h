// Hugging Face model directories: config.json + model.safetensors (or shards with
// model.safetensors.index.json) + tokenizer.model + augur.json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/model.h"
#include "core/status.h"

namespace augur {

// The kinds of checkpoint augur writes (augur.json "kind"), each named once.
struct ArtifactKind {
  const char* name;         // "target", "ar-drafter", "nat-drafter"
  const char* description;  // for --help and messages
  bool drafter;             // eval's --drafter can load it
};
const std::vector<ArtifactKind>& ArtifactKinds();
const ArtifactKind* FindArtifactKind(std::string_view name);  // nullptr: unknown
inline constexpr char kKindTarget[] = "target";
inline constexpr char kKindArDrafter[] = "ar-drafter";
inline constexpr char kKindNatDrafter[] = "nat-drafter";

// augur.json: what augur knows about a checkpoint beyond config.json.
struct AugurMeta {
  std::string kind = kKindTarget;  // a name of ArtifactKinds()
  int64_t gamma = 0;            // NAT drafters
  int64_t mask_token_id = -1;   // NAT drafters
  std::string quantization;     // "" = none; else a scheme name (int8, int4-g32, ...)
  std::string target_fingerprint;
  std::string data_fingerprint;
  std::string tokenizer_fingerprint;
  std::string command_line;
  std::string version;          // augur version that wrote it
  nlohmann::json extra = nlohmann::json::object();  // anything else a module wants to keep

  nlohmann::json ToJson() const;
  static absl::StatusOr<AugurMeta> FromJson(const nlohmann::json& j, const std::string& source);
};

struct SaveOptions {
  std::string dtype = "float32";     // float32 | float16 | bfloat16 (tensors on disk)
  int64_t max_shard_bytes = 0;       // 0 = one model.safetensors; else shards + index
  std::string tokenizer_model;       // path of a tokenizer.model to copy in ("" = none)
};

// Writes config.json, the safetensors file(s), augur.json and (optionally) tokenizer.model
// into `dir`. Every file is written to a temporary name and renamed into place.
absl::Status SaveCheckpoint(LlamaModel& model, const AugurMeta& meta, const std::string& dir,
                            const SaveOptions& opts = {});

// DIR/augur.json parsed; the defaults (kind target, no quantization) when the file is absent.
// Errors name the file: unreadable, not JSON, fields of the wrong type.
absl::StatusOr<AugurMeta> ReadAugurMeta(const std::string& dir);

struct LoadedCheckpoint {
  LlamaModel model{nullptr};
  AugurMeta meta;           // defaults (kind target) when augur.json is absent
  std::string dir;
  std::string tokenizer_model;  // path, "" when absent
};

// Loads a directory written by augur or by transformers' save_pretrained. Tensors are
// converted to `dtype` and moved to `device`. Shape disagreements with config.json,
// missing or unexpected tensors, and quantized checkpoints (unless allowed) are errors.
absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir,
                                                torch::Device device = torch::kCPU,
                                                torch::Dtype dtype = torch::kFloat32);

}  // namespace augur
