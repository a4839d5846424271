// EAGLE-3 export (`augur export --format eagle3`): an augur eagle-drafter checkpoint written as
// the directory that vLLM (LlamaForCausalLMEagle3 / Eagle3LlamaForCausalLM), SGLang
// (LlamaForCausalLMEagle3) and llama.cpp's convert_hf_to_gguf.py load. The tensor table is
// Eagle3Layout(), the only place the names, shapes and dtypes are written down in code;
// docs/FORMATS.md ("EAGLE-3 export") shows the same table with the engine source that reads
// each name, and tests/eagle3_export_test.cc checks that the two agree.
//
// Dimensions: d drafter hidden size, dt target hidden size, H query heads, KV key/value heads,
// hd head_dim, ff intermediate size, Nd draft vocabulary, V target vocabulary.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/checkpoint.h"
#include "core/safetensors.h"
#include "core/status.h"

namespace augur::eagle3 {

struct Dims {
  int64_t hidden = 0;         // d
  int64_t target_hidden = 0;  // dt
  int64_t heads = 0;          // H
  int64_t kv_heads = 0;       // KV
  int64_t head_dim = 0;       // hd
  int64_t intermediate = 0;   // ff
  int64_t draft_vocab = 0;    // Nd
  int64_t target_vocab = 0;   // V
};

struct TensorSpec {
  std::string name;
  StDtype dtype = StDtype::kF32;
  std::vector<int64_t> shape;  // for these Dims
  std::string symbolic;        // the shape in the letters above, e.g. "[d, 3*dt]" (the docs' column)
  bool linear = false;         // a Linear weight [out, in]: quantized checkpoints store it as NAME.qweight/...
  std::string role;            // what it holds, one line
};

// Every tensor of the export, in file order. No embed_tokens: the drafter reads the target's
// token embedding (each engine falls back to the target's when the drafter has none).
std::vector<TensorSpec> Layout(const Dims& dims);

// What the export reads from augur's checkpoint: the dims, the settings config.json and
// augur.json carry, and every tensor of Layout() (float32, d2t int64, t2d bool), checked.
struct Drafter {
  Dims dims;
  std::vector<int64_t> target_layers;  // 3 ids: h_i is the hidden state entering target layer i
  int64_t target_num_layers = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  int64_t max_position_embeddings = 0;
  int64_t bos_token_id = -1, eos_token_id = -1;  // -1: not in config.json
  AugurMeta meta;
  std::string source_quantization;  // augur.json's scheme ("" = float checkpoint)
  NamedTensors tensors;             // in Layout() order
};

// Reads and validates an eagle-drafter checkpoint directory (augur's, or an export of one).
// Errors name the directory and the problem: not an eagle-drafter, extra.eagle missing or
// malformed, config.json fields missing, a tensor missing, unexpected, of the wrong dtype or
// shape, non-finite weights, d2t ids outside the target vocabulary or repeated, t2d
// disagreeing with d2t, d != dt. Quantized linears are dequantized to float32.
absl::StatusOr<Drafter> ReadDrafter(const std::string& dir);

// config.json for the serving engines (docs/FORMATS.md lists each key and who reads it).
nlohmann::json ServingConfig(const Drafter& drafter);

struct ExportSummary {
  std::vector<TensorSpec> tensors;  // as written
  uint64_t safetensors_bytes = 0;
  std::string source_quantization;  // "" or the scheme that was dequantized
};

// Writes `out_dir` (config.json, model.safetensors, augur.json, and the tokenizer files when
// the checkpoint has them): staged in a sibling temporary directory, then renamed into place.
// An existing `out_dir` is replaced only when it is an earlier EAGLE-3 export (its augur.json
// says so); anything else there is refused.
absl::StatusOr<ExportSummary> Export(const std::string& model_dir, const std::string& out_dir);

}  // namespace augur::eagle3
