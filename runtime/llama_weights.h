// A Llama-family checkpoint's weights as plain float32 vectors (and packed int8/int4 weights),
// read straight from config.json + safetensors without building a LibTorch module: what the
// native engine (runtime/native_llama.h) runs, so a target loads without a LibTorch copy of
// itself. Both kinds of checkpoint: unquantized (F32/F16/BF16/F64 tensors) and quantized by
// `augur quantize` (NAME.qweight/.scales/.zeros, docs/FORMATS.md).
//
// Shapes: C hidden, V vocab; a linear's weight is [out, in] row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/config.h"
#include "runtime/qweight.h"

namespace augur {

struct LinearWeights {
  int64_t out = 0, in = 0;
  std::vector<float> weight;  // fp32 [out, in]; empty when packed
  std::vector<float> bias;    // [out]; empty when none
  QuantizedWeight packed;     // scheme.bits 8 or 4 when quantized
  bool quantized() const { return packed.scheme.bits != 0; }
};

struct LlamaLayerWeights {
  std::vector<float> input_norm, post_norm;  // [C]
  LinearWeights q, k, v, o, gate, up, down;
};

struct LlamaWeights {
  ModelConfig config;
  AugurMeta meta;
  std::vector<float> embed;  // [V, C]
  std::vector<float> final_norm;
  std::vector<LlamaLayerWeights> layers;
  LinearWeights head;        // the embedding's copy when tied (or its packed form)
};

// Reads DIR (config.json, augur.json when present, model.safetensors or shards). Errors name
// the file and the tensor: missing, unexpected, a shape config.json does not imply, a
// non-float dense tensor, packed tensors that disagree with augur.json's scheme.
absl::StatusOr<LlamaWeights> ReadLlamaWeights(const std::string& dir);

// Round-to-nearest quantization of every decoder linear (and the head when `head`) in place;
// the fp32 copies are released. Refuses weights that are already quantized.
absl::Status QuantizeWeightsRtn(LlamaWeights& w, const QuantScheme& scheme, bool head);

}  // namespace augur
