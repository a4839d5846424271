#include "quantize/gguf_dequant.h"

#include <cstring>

// Bitwise equality with numpy needs each `a * b - c` to round twice; CMake builds this file
// with -ffp-contract=off, and the pragma/attribute below keep that true for a direct g++ build.
#include "quantize/fp_contract.h"

namespace augur::gguf {
namespace {

float Half(const uint8_t* p) { return Fp16ToFp32(static_cast<uint16_t>(p[0] | (p[1] << 8))); }

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// Low nibble of byte j is value j, high nibble is value j + 16 (Q4_0/Q4_1/Q5_0/Q5_1).
int Nibble32(const uint8_t* qs, int i) { return i < 16 ? (qs[i] & 0x0F) : (qs[i - 16] >> 4); }

AUGUR_NO_FP_CONTRACT void BlockQ4_0(const uint8_t* b, float* y) {
  const float d = Half(b);
  for (int i = 0; i < 32; ++i) y[i] = d * static_cast<float>(Nibble32(b + 2, i) - 8);
}

AUGUR_NO_FP_CONTRACT void BlockQ4_1(const uint8_t* b, float* y) {
  const float d = Half(b), m = Half(b + 2);
  for (int i = 0; i < 32; ++i) {
    const float dq = d * static_cast<float>(Nibble32(b + 4, i));
    y[i] = dq + m;
  }
}

AUGUR_NO_FP_CONTRACT void BlockQ5_0(const uint8_t* b, float* y) {
  const float d = Half(b);
  const uint32_t qh = Le32(b + 2);
  for (int i = 0; i < 32; ++i) {
    const int q = Nibble32(b + 6, i) | static_cast<int>((qh >> i) & 1) << 4;
    y[i] = d * static_cast<float>(q - 16);
  }
}

AUGUR_NO_FP_CONTRACT void BlockQ5_1(const uint8_t* b, float* y) {
  const float d = Half(b), m = Half(b + 2);
  const uint32_t qh = Le32(b + 4);
  for (int i = 0; i < 32; ++i) {
    const int q = Nibble32(b + 8, i) | static_cast<int>((qh >> i) & 1) << 4;
    const float dq = d * static_cast<float>(q);
    y[i] = dq + m;
  }
}

AUGUR_NO_FP_CONTRACT void BlockQ8_0(const uint8_t* b, float* y) {
  const float d = Half(b);
  for (int i = 0; i < 32; ++i) y[i] = static_cast<float>(static_cast<int8_t>(b[2 + i])) * d;
}

// The 2-bit fields of Q2_K and Q3_K (and Q6_K's high bits): value i of the 256 sits in the
// half h = i / 128, as bits 2s..2s+1 (s = (i % 128) / 32) of byte h * 32 + i % 32.
int Crumb256(const uint8_t* qs, int i) {
  const int h = i / 128, s = (i % 128) / 32;
  return (qs[h * 32 + i % 32] >> (2 * s)) & 3;
}

// Q2_K: scales[16] | qs[64] | d | dmin. Sub-block k = i / 16 has sub-scale scales[k] & 15 and
// sub-min scales[k] >> 4.
AUGUR_NO_FP_CONTRACT void BlockQ2_K(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = Half(b + 80), dmin = Half(b + 82);
  for (int k = 0; k < 16; ++k) {
    const float dl = d * static_cast<float>(scales[k] & 0x0F);
    const float ml = dmin * static_cast<float>(scales[k] >> 4);
    for (int j = 0; j < 16; ++j) {
      const int i = k * 16 + j;
      const float v = dl * static_cast<float>(Crumb256(qs, i));
      y[i] = v - ml;
    }
  }
}

// Q3_K: hmask[32] | qs[64] | scales[12] | d. The sixteen 6-bit sub-scales: the low 4 bits of
// sub-block k are the low (k < 8) or high (k >= 8) nibble of byte k % 8; its top 2 bits are
// bits 2*(k/4)..+1 of byte 8 + k % 4. Value i's third bit is bit i / 32 of hmask[i % 32]; a
// clear bit subtracts 4.
AUGUR_NO_FP_CONTRACT void BlockQ3_K(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = Half(b + 108);
  for (int k = 0; k < 16; ++k) {
    const int lo = (k < 8 ? sc[k] : sc[k - 8] >> 4) & 0x0F;
    const int hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
    const float dl = d * static_cast<float>((lo | hi << 4) - 32);
    for (int j = 0; j < 16; ++j) {
      const int i = k * 16 + j;
      const int hbit = (hmask[i % 32] >> (i / 32)) & 1;
      y[i] = dl * static_cast<float>(Crumb256(qs, i) - (hbit ? 0 : 4));
    }
  }
}

// The 12 scale bytes of Q4_K/Q5_K hold eight 6-bit sub-scales and eight 6-bit sub-mins. For
// sub-block k < 4: scale = byte k & 63, min = byte k + 4 & 63. For k >= 4: the low 4 bits come
// from byte k + 4 (scale: low nibble, min: high nibble) and the top 2 bits are the top 2 bits of
// byte k - 4 (scale) or byte k (min).
void ScaleMinK4(const uint8_t* s, int k, int* scale, int* min) {
  if (k < 4) {
    *scale = s[k] & 63;
    *min = s[k + 4] & 63;
  } else {
    *scale = (s[k + 4] & 0x0F) | ((s[k - 4] >> 6) << 4);
    *min = (s[k + 4] >> 4) | ((s[k] >> 6) << 4);
  }
}

// Q4_K: d | dmin | scales[12] | qs[128]. Sub-block k (32 values) reads the low (k even) or
// high (k odd) nibbles of bytes 32 * (k / 2) .. +31.
AUGUR_NO_FP_CONTRACT void BlockQ4_K(const uint8_t* b, float* y) {
  const float d = Half(b), dmin = Half(b + 2);
  const uint8_t* qs = b + 16;
  for (int k = 0; k < 8; ++k) {
    int sc, m;
    ScaleMinK4(b + 4, k, &sc, &m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    for (int j = 0; j < 32; ++j) {
      const int q = (qs[32 * (k / 2) + j] >> (4 * (k % 2))) & 0x0F;
      const float v = dl * static_cast<float>(q);
      y[k * 32 + j] = v - ml;
    }
  }
}

// Q5_K: d | dmin | scales[12] | qh[32] | qs[128]; nibbles as Q4_K, the fifth bit of value
// k * 32 + j is bit k of qh[j].
AUGUR_NO_FP_CONTRACT void BlockQ5_K(const uint8_t* b, float* y) {
  const float d = Half(b), dmin = Half(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int k = 0; k < 8; ++k) {
    int sc, m;
    ScaleMinK4(b + 4, k, &sc, &m);
    const float dl = d * static_cast<float>(sc);
    const float ml = dmin * static_cast<float>(m);
    for (int j = 0; j < 32; ++j) {
      const int q = ((qs[32 * (k / 2) + j] >> (4 * (k % 2))) & 0x0F) | ((qh[j] >> k) & 1) << 4;
      const float v = dl * static_cast<float>(q);
      y[k * 32 + j] = v - ml;
    }
  }
}

// Q6_K: ql[128] | qh[64] | scales[16] (int8) | d. Value i in half h = i / 128 (r = i % 128):
// low 4 bits are the low (r < 64) or high (r >= 64) nibble of ql[h * 64 + r % 64]; the top
// 2 bits are Crumb256(qh, i). Sub-block i / 16 has scale scales[i / 16].
AUGUR_NO_FP_CONTRACT void BlockQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const uint8_t* scales = b + 192;
  const float d = Half(b + 208);
  for (int k = 0; k < 16; ++k) {
    const float dl = d * static_cast<float>(static_cast<int8_t>(scales[k]));
    for (int j = 0; j < 16; ++j) {
      const int i = k * 16 + j, h = i / 128, r = i % 128;
      const int lo = (ql[h * 64 + r % 64] >> (r < 64 ? 0 : 4)) & 0x0F;
      const int q = lo | Crumb256(qh, i) << 4;
      y[i] = dl * static_cast<float>(q - 32);
    }
  }
}

void BlockF32(const uint8_t* b, float* y) { std::memcpy(y, b, 4); }  // little-endian hosts
void BlockF16(const uint8_t* b, float* y) { *y = Half(b); }
void BlockBF16(const uint8_t* b, float* y) {  // the upper half of a float32
  const uint32_t bits = static_cast<uint32_t>(b[0] | (b[1] << 8)) << 16;
  std::memcpy(y, &bits, 4);
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn Decoder(GgmlType t) {
  switch (t) {
    case GgmlType::kF32: return BlockF32;
    case GgmlType::kF16: return BlockF16;
    case GgmlType::kBF16: return BlockBF16;
    case GgmlType::kQ4_0: return BlockQ4_0;
    case GgmlType::kQ4_1: return BlockQ4_1;
    case GgmlType::kQ5_0: return BlockQ5_0;
    case GgmlType::kQ5_1: return BlockQ5_1;
    case GgmlType::kQ8_0: return BlockQ8_0;
    case GgmlType::kQ2_K: return BlockQ2_K;
    case GgmlType::kQ3_K: return BlockQ3_K;
    case GgmlType::kQ4_K: return BlockQ4_K;
    case GgmlType::kQ5_K: return BlockQ5_K;
    case GgmlType::kQ6_K: return BlockQ6_K;
  }
  return nullptr;
}

}  // namespace

absl::Status DequantizeRows(GgmlType type, const uint8_t* src, size_t src_bytes, int64_t n_values, float* dst) {
  const GgmlTypeTraits* info = FindGgmlType(static_cast<uint32_t>(type));
  const BlockFn decode = info ? Decoder(type) : nullptr;
  if (decode == nullptr)
    return absl::InvalidArgumentError(
        absl::StrCat("gguf dequantize: unknown tensor type ", static_cast<uint32_t>(type)));
  if (n_values < 0 || n_values % info->block_size != 0)
    return absl::InvalidArgumentError(absl::StrCat("gguf dequantize: ", n_values, " values of ", info->name,
                                                   " are not a whole number of ", info->block_size, "-value blocks"));
  const uint64_t blocks = static_cast<uint64_t>(n_values / info->block_size);
  if (blocks > src_bytes / info->block_bytes)
    return absl::InvalidArgumentError(absl::StrCat("gguf dequantize: ", n_values, " values of ", info->name, " need ",
                                                   blocks, " blocks of ", info->block_bytes, " bytes, have ",
                                                   src_bytes, " bytes"));
  for (uint64_t i = 0; i < blocks; ++i) decode(src + i * info->block_bytes, dst + i * info->block_size);
  return absl::OkStatus();
}

}  // namespace augur::gguf
