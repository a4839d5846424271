// GGML tensor types and block formats for GGUF export, byte-exact to ggml-quants.c's
// reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref), which are what
// llama.cpp and the gguf Python package write. Rows are quantized in blocks of 32 values
// along the row (the innermost, contiguous dimension), so a row length must be a
// multiple of 32.
//
//   Q8_0 block (34 bytes): fp16 d = amax / 127, then 32 int8 q = roundf(x * (1/d))
//                          (roundf: halves away from zero). x ~= q * d.
//   Q4_0 block (18 bytes): m = the value with the largest magnitude (first one on ties),
//                          fp16 d = m / -8, q = min(15, trunc(x * (1/d) + 8.5)) in [0, 15],
//                          packed 16 bytes: byte j = q[j] | q[j + 16] << 4. x ~= (q - 8) * d.
// The scale 1/d is taken from the float32 d before it is rounded to fp16, as ggml does;
// d = 0 (an all-zero block) gives q = 0 (Q8_0) or 8 (Q4_0).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur::gguf {

// ggml_type values (ggml.h, gguf-py's GGMLQuantizationType): the ones augur reads. The
// values are the file's; other ggml types (IQ*, TQ*, Q8_K, ...) are refused by the reader.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};

// One row of the type table (gguf_quant.cc): everything about a type that does not need its
// block layout. Floats are "blocks" of one value.
struct GgmlTypeTraits {
  GgmlType type;
  const char* name;    // ggml's spelling: "f32", "q4_0", "q4_K", "bf16"
  int64_t block_size;  // values per block: 1, 32 or 256 (QK_K)
  size_t block_bytes;  // bytes per block
  bool writable;       // QuantizeRow encodes it (export); every row is readable (gguf_dequant.h)
};

// The table, in ggml_type order.
const std::vector<GgmlTypeTraits>& GgmlTypeTable();
// The row of a ggml_type value read from a file; nullptr when augur does not read that type.
const GgmlTypeTraits* FindGgmlType(uint32_t value);
const GgmlTypeTraits& GgmlTypeInfo(GgmlType t);

inline constexpr int64_t kQuantBlock = 32;  // QK8_0 == QK4_0 (the block of the types augur writes)
inline constexpr int64_t kSuperBlock = 256;  // QK_K, the K-quants' super-block
inline constexpr size_t kQ8_0BlockBytes = 2 + 32;
inline constexpr size_t kQ4_0BlockBytes = 2 + 16;

std::string GgmlTypeName(GgmlType t);  // "f32", "f16", "q4_0", "q8_0", "q4_K", "bf16", ...
// A type to write (export): f32, f16, q8_0 or q4_0, case-insensitive; an error otherwise.
absl::StatusOr<GgmlType> GgmlTypeFromName(std::string_view name);
bool IsBlockType(GgmlType t);  // block_size > 1
bool IsWritable(GgmlType t);
int64_t BlockSize(GgmlType t);
// Bytes of one row of `n` values; n must be a multiple of BlockSize(t).
size_t RowBytes(GgmlType t, int64_t n);

// IEEE binary16 with round-to-nearest-even (what GGML_FP32_TO_FP16 and numpy's astype do);
// overflow gives +-inf, NaN stays NaN.
uint16_t Fp32ToFp16(float f);
float Fp16ToFp32(uint16_t h);

// Encodes `n` floats (a multiple of 32 for the block types) as `type`, appending to `out`;
// `type` must be writable (an internal check).
void QuantizeRow(GgmlType type, const float* x, int64_t n, std::vector<uint8_t>* out);
void QuantizeRowQ8_0(const float* x, int64_t n, uint8_t* out);  // n/32 * 34 bytes
void QuantizeRowQ4_0(const float* x, int64_t n, uint8_t* out);  // n/32 * 18 bytes
// The inverse map for any type (DequantizeRows in gguf_dequant.h, for trusted sizes: n a
// multiple of the block size, `in` holding RowBytes(type, n) bytes; an internal check).
void DequantizeRow(GgmlType type, const uint8_t* in, int64_t n, float* y);

}  // namespace augur::gguf
