// Quantized checkpoints (docs/FORMATS.md, "Quantized checkpoint") and the LlamaModel that runs
// them: each decoder linear (and the head unless it is kept in fp32) gets a QuantLinearBackend
// (runtime/qlinear.h) in the model's LinearBackend slot.
#pragma once

#include <torch/nn/modules/linear.h>

#include <map>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/model.h"
#include "runtime/qweight.h"

namespace augur {

// One linear of a LlamaModel that quantization may replace. `name` is the HF prefix
// ("model.layers.0.self_attn.q_proj", or "lm_head" for the output head, which is the
// embedding when tie_word_embeddings).
struct LinearSlot {
  std::string name;
  at::Tensor weight;  // [out, in], the parameter itself (shared storage)
  at::Tensor bias;    // undefined when the linear has none
  LinearBackendPtr* backend;
  int64_t layer;      // decoder layer, -1 for the head
};
// Decoder linears in layer order (q, k, v, o, gate, up, down), then the head when `with_head`.
std::vector<LinearSlot> ModelLinears(LlamaModel& model, bool with_head);
inline constexpr char kHeadName[] = "lm_head";

using QuantizedLinears = std::map<std::string, QuantizedWeight>;  // slot name -> weight

// What augur.json's extra["quantization"] holds.
struct QuantizationInfo {
  std::string method;       // rtn | gptq | qat
  bool head_quantized = false;
  nlohmann::json settings = nlohmann::json::object();  // method settings (damp, calib, ...)
};

// Writes config.json, model.safetensors (fp32 tensors, plus NAME.qweight / NAME.scales /
// NAME.zeros for every quantized linear instead of NAME.weight), augur.json (quantization =
// the scheme name) and the tokenizer files when `tokenizer_model` is given.
absl::Status SaveQuantizedCheckpoint(LlamaModel& model, const QuantizedLinears& linears, const QuantScheme& scheme,
                                     const QuantizationInfo& info, AugurMeta meta, const std::string& dir,
                                     const std::string& tokenizer_model);

struct QuantizedCheckpoint {
  LlamaModel model{nullptr};  // runs quantized; its Linears hold the dequantized weights
  AugurMeta meta;
  QuantScheme scheme;
  QuantizedLinears linears;
  std::string dir, tokenizer_model;
};

// Loads a quantized checkpoint onto `device`. Refuses an unquantized checkpoint, an unknown
// scheme, tensors that disagree with augur.json's scheme, and (when `expect_scheme` is not
// empty) a checkpoint quantized with another scheme.
absl::StatusOr<QuantizedCheckpoint> LoadQuantizedModel(const std::string& dir, c10::Device device = c10::kCPU,
                                                       const std::string& expect_scheme = "");

// Either kind of checkpoint, for code that only runs a model (drafters, generate, held-out
// figures): LoadQuantizedModel when augur.json names a quantization scheme, else
// LoadCheckpoint in float32. The result's meta.quantization tells which one it was.
absl::StatusOr<LoadedCheckpoint> LoadAnyCheckpoint(const std::string& dir, c10::Device device = c10::kCPU);

// Puts a QuantLinearBackend into each named slot and copies the dequantized weight into the
// Linear (so parameter readers see the effective weights).
void InstallQuantized(LlamaModel& model, const QuantizedLinears& linears);

}  // namespace augur
