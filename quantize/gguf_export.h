// GGUF export of an augur / Hugging Face Llama-family checkpoint for llama.cpp
// (`augur export --format gguf`). The layout, names, Q/K permutation and type rules are in
// docs/FORMATS.md ("GGUF export").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "quantize/gguf_quant.h"

namespace augur::gguf {

struct ExportOptions {
  GgmlType type = GgmlType::kF16;  // the type of the 2-D weights; 1-D tensors stay f32
  std::string name;                // general.name ("" = the checkpoint directory's name)
};

struct ExportedTensor {
  std::string name;            // GGUF name (token_embd.weight, blk.0.attn_q.weight, ...)
  std::string source;          // checkpoint name (model.embed_tokens.weight, ...)
  std::vector<int64_t> shape;  // PyTorch order
  GgmlType type;
  bool fell_back = false;      // wanted a block type but its row length is not a multiple of 32
};

struct ExportSummary {
  std::vector<ExportedTensor> tensors;
  uint64_t file_bytes = 0;
  uint32_t file_type = 0;  // general.file_type (llama_ftype)
};

// llama_ftype of a whole-file type: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7.
uint32_t LlamaFileType(GgmlType type);

// The HF parameter name's GGUF name ("" when the name is not part of the llama layout).
std::string GgufTensorName(const std::string& hf_name);

// Reverses the row order that HF checkpoints use for rotary embeddings: HF rotates the
// halves (x[i], x[i + D/2]) of each head, llama.cpp's llama architecture rotates adjacent
// pairs (x[2i], x[2i+1]). Within each of `n_head` heads, row h*(D/2) + i moves to 2i + h.
// Works on a [n_head*D, in] weight or a [n_head*D] bias (float32, contiguous).
void PermuteForLlamaRope(const float* in, float* out, int64_t n_head, int64_t head_dim, int64_t cols);

// Reads the checkpoint in `model_dir` and writes `out_path` atomically. Refuses quantized
// checkpoints, architectures llama.cpp's "llama" cannot run, non-finite weights, f16 for
// weights outside the float16 range, and a block type no weight matrix can take.
absl::StatusOr<ExportSummary> ExportGguf(const std::string& model_dir, const std::string& out_path,
                                         const ExportOptions& options);

}  // namespace augur::gguf
