// `augur import --gguf FILE.gguf --out DIR`: a GGUF file (llama.cpp's format, as users
// download it) becomes a normal augur / Hugging Face checkpoint directory that transformers
// loads with from_pretrained(DIR):
//   config.json             from the {arch}.* hyperparameters
//   model.safetensors       every tensor dequantized (gguf_dequant.h) to float32, stored as
//                           --dtype; q/k rows of llama-arch files un-permuted (llama.cpp's
//                           converter interleaves the rotary halves, HF keeps them apart)
//   tokenizer.json          the BPE vocabulary, merges and pre-tokenizer from tokenizer.ggml.*
//   tokenizer_config.json   special tokens, add_bos_token, chat_template
//   generation_config.json  bos/eos ids
//   augur.json              kind target; provenance: source file, its sha256, GGUF version,
//                           architecture and the tensor types read
// The directory is written under a temporary name and renamed into place, so a failed or
// killed import leaves nothing at DIR. The layout and name table: docs/FORMATS.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"

namespace augur::gguf {

struct ImportOptions {
  std::string dtype = "float32";  // float32 | bfloat16 | float16 (tensors on disk)
  std::string command_line;       // recorded in augur.json
  bool progress = true;           // a progress line on a terminal
};

struct ImportSummary {
  std::string architecture;               // HF architecture written to config.json
  std::string gguf_architecture;          // general.architecture
  int64_t num_tensors = 0;
  int64_t num_parameters = 0;
  std::map<std::string, int64_t> types;   // GGML type name -> tensor count
  std::string sha256;
};

absl::StatusOr<ImportSummary> ImportGguf(const std::string& gguf_path, const std::string& out_dir,
                                         const ImportOptions& options);

// Undoes llama.cpp's rotary row permutation (the inverse of PermuteForLlamaRope): within each
// of `n_head` heads, row 2i + part moves back to part * (D/2) + i.
void UnpermuteFromLlamaRope(const float* in, float* out, int64_t n_head, int64_t head_dim, int64_t cols);

}  // namespace augur::gguf
