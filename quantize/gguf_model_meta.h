// What `augur import --gguf` reads from a GGUF file besides tensor data: the tokenizer.ggml.*
// vocabulary, the {arch}.* hyperparameters as a ModelConfig, and the check that the tensors are
// exactly the ones the architecture implies. Torch-free, so the fuzz harnesses (tests/fuzz/)
// build it without LibTorch. Every problem is one line naming the file ("gguf import: PATH: ...").
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/bpe_tokenizer.h"
#include "core/config.h"
#include "core/status.h"
#include "quantize/gguf_reader.h"

namespace augur::gguf {

// The tokenizer.ggml.* metadata as the BPE tokenizer's input; only tokenizer.ggml.model = gpt2.
absl::StatusOr<GgufBpeVocab> ReadGgufBpeVocab(const GgufFile& f);

// The {arch}.* hyperparameters; `n_tokens` is the size of tokenizer.ggml.tokens. Layer counts
// and sizes are bounded by what the file holds (block_count by its tensor count) before any
// per-layer work.
absl::StatusOr<ModelConfig> ReadGgufModelConfig(const GgufFile& f, const Architecture& arch, int64_t n_tokens);

// (GGUF name, HF name) of every tensor the config implies, in HF order.
std::vector<std::pair<std::string, std::string>> ExpectedGgufTensors(const ModelConfig& c, bool qkv_bias);

// The file holds exactly the tensors ExpectedGgufTensors names, with the shapes the config implies.
absl::Status CheckGgufTensors(const GgufFile& f, const ModelConfig& c, const Architecture& arch);

}  // namespace augur::gguf
