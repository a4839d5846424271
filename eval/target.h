// The target model as the evaluation drives it: one loader for every command that runs a
// target (eval, bench, generate), on either engine of runtime/decode_model.h.
//
//   engine "native": runtime/native_llama.h, the CPU default (fp32, int8 or int4 weights,
//     threads over output rows, rows exact: verification sees step-by-step decoding's logits);
//   engine "torch": LibTorch (any device; the CUDA path);
//   engine "auto": native on the CPU, torch elsewhere.
// quant: run an fp32 checkpoint quantized on load (round-to-nearest, runtime/qweight.h),
// "int8" | "int4-g32" | "int4-g64" | "int4-g128"; "" keeps the checkpoint as it is (a
// checkpoint `augur quantize` made runs quantized as it was saved).
#pragma once

#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "core/checkpoint.h"
#include "runtime/decode_model.h"

namespace augur {

struct TargetOptions {
  std::string dir;
  std::string engine = "auto";
  std::string quant;
  bool quant_head = true;  // quant also covers the output head (the tied embedding's copy)
  c10::Device device = c10::kCPU;
  int64_t capacity = 0;    // cache entries (prompt + max_new + draft + 1); 0: max_position_embeddings
};

struct LoadedTarget {
  std::unique_ptr<DecodeModel> model;
  ModelConfig config;
  AugurMeta meta;
  std::string dir, tokenizer_model;
  std::string engine;     // "native" | "torch"
  std::string precision;  // model->precision()
};

// Errors name the directory or the flag: an unknown engine or scheme, native on a non-CPU
// device, a checkpoint the native engine cannot run exactly when engine is "native" (with
// "auto" it falls back to torch and says so on stderr).
absl::StatusOr<LoadedTarget> LoadTarget(const TargetOptions& opts);

}  // namespace augur
