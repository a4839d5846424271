// Dequantization of every GGML type augur reads (the GgmlType table in gguf_quant.h), written
// from the block layouts of ggml-quants.h. The results are bit-for-bit those of the gguf Python
// package's gguf.quants.dequantize (numpy, float32 throughout): every product and sum is one
// float32 rounding in numpy's order (scale * sub-scale first, then * q, then - min), and this
// file's .cc is compiled with -ffp-contract=off so that no fused multiply-add merges two.
//
// Layouts (fp16 = IEEE half, little-endian; q = the unsigned code, y = the value):
//   Q4_0  32 values, 18 B: fp16 d | 16 B nibbles         y = d * (q - 8)
//   Q4_1  32 values, 20 B: fp16 d, fp16 m | 16 B nibbles  y = d * q + m
//   Q5_0  32 values, 22 B: fp16 d | u32 qh | 16 B nibbles  q = nibble | bit << 4, y = d * (q - 16)
//   Q5_1  32 values, 24 B: fp16 d, fp16 m | u32 qh | 16 B  y = d * q + m
//   Q8_0  32 values, 34 B: fp16 d | 32 int8               y = q * d
//   (nibbles: byte j holds value j in its low half and value j + 16 in its high half; qh bit i
//   is the fifth bit of value i.)
// K-quants, 256-value super-blocks of 16 or 8 sub-blocks:
//   Q2_K  84 B: 16 B scales (low nibble sub-scale, high nibble sub-min) | 64 B 2-bit q |
//         fp16 d, fp16 dmin; 16 sub-blocks of 16: y = (d * sc) * q - (dmin * m)
//   Q3_K 110 B: 32 B high-bit mask | 64 B 2-bit q | 12 B 6-bit scales | fp16 d;
//         q3 = q2 - 4 * (1 - hbit), y = (d * (sc - 32)) * q3
//   Q4_K 144 B: fp16 d, fp16 dmin | 12 B 6-bit scales and mins | 128 B nibbles;
//         8 sub-blocks of 32: y = (d * sc) * q - (dmin * m)
//   Q5_K 176 B: as Q4_K with 32 B of fifth bits before the nibbles
//   Q6_K 210 B: 128 B low nibbles | 64 B 2-bit highs | 16 int8 scales | fp16 d;
//         16 sub-blocks of 16: y = (d * sc) * (q - 32)
// The exact bit positions are spelled out next to each decoder in gguf_dequant.cc.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "quantize/gguf_quant.h"

namespace augur::gguf {

// Decodes `n_values` consecutive values of `type` from `src` (which holds `src_bytes` bytes)
// into `dst`. n_values must be a multiple of BlockSize(type) and src_bytes at least
// RowBytes(type, n_values); otherwise a one-line error and nothing is written.
absl::Status DequantizeRows(GgmlType type, const uint8_t* src, size_t src_bytes, int64_t n_values, float* dst);

}  // namespace augur::gguf
