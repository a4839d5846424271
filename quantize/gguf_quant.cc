#include "quantize/gguf_quant.h"

#include <absl/strings/ascii.h>
#include <absl/strings/str_join.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quantize/gguf_dequant.h"

// The block quantizers must round exactly as ggml's reference C and the gguf package's
// numpy code do: x * id and the + 8.5 are two float32 roundings. A fused multiply-add
// (which -ffp-contract=fast would emit under -mfma) rounds once and changes some nibbles.
#include "quantize/fp_contract.h"

namespace augur::gguf {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void PutFp16(uint8_t* p, float f) {
  const uint16_t h = Fp32ToFp16(f);
  p[0] = static_cast<uint8_t>(h & 0xFF);  // GGUF is little-endian
  p[1] = static_cast<uint8_t>(h >> 8);
}

}  // namespace

const std::vector<GgmlTypeTraits>& GgmlTypeTable() {
  // Block layouts (ggml-quants.h): gguf_dequant.cc. K-quants: 256-value super-blocks.
  static const std::vector<GgmlTypeTraits> kTable = {
      {GgmlType::kF32, "f32", 1, 4, true},
      {GgmlType::kF16, "f16", 1, 2, true},
      {GgmlType::kQ4_0, "q4_0", 32, 2 + 16, true},
      {GgmlType::kQ4_1, "q4_1", 32, 2 + 2 + 16, false},
      {GgmlType::kQ5_0, "q5_0", 32, 2 + 4 + 16, false},
      {GgmlType::kQ5_1, "q5_1", 32, 2 + 2 + 4 + 16, false},
      {GgmlType::kQ8_0, "q8_0", 32, 2 + 32, true},
      {GgmlType::kQ2_K, "q2_K", 256, 16 + 64 + 2 + 2, false},
      {GgmlType::kQ3_K, "q3_K", 256, 32 + 64 + 12 + 2, false},
      {GgmlType::kQ4_K, "q4_K", 256, 2 + 2 + 12 + 128, false},
      {GgmlType::kQ5_K, "q5_K", 256, 2 + 2 + 12 + 32 + 128, false},
      {GgmlType::kQ6_K, "q6_K", 256, 128 + 64 + 16 + 2, false},
      {GgmlType::kBF16, "bf16", 1, 2, false},
  };
  return kTable;
}

const GgmlTypeTraits* FindGgmlType(uint32_t value) {
  for (const auto& row : GgmlTypeTable())
    if (static_cast<uint32_t>(row.type) == value) return &row;
  return nullptr;
}

const GgmlTypeTraits& GgmlTypeInfo(GgmlType t) {
  const GgmlTypeTraits* row = FindGgmlType(static_cast<uint32_t>(t));
  AUGUR_CHECK(row != nullptr, "GgmlType ", static_cast<uint32_t>(t), " is not in the type table");
  return *row;
}

std::string GgmlTypeName(GgmlType t) {
  const GgmlTypeTraits* row = FindGgmlType(static_cast<uint32_t>(t));
  return row ? row->name : "?";
}

absl::StatusOr<GgmlType> GgmlTypeFromName(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  std::vector<std::string> writable;
  const GgmlTypeTraits* read_only = nullptr;
  for (const auto& row : GgmlTypeTable()) {
    const bool match = absl::AsciiStrToLower(row.name) == lower;
    if (match && row.writable) return row.type;
    if (match) read_only = &row;
    if (row.writable) writable.push_back(row.name);
  }
  const std::string last = writable.back();
  writable.pop_back();
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown GGUF tensor type '", std::string(name), "' (choose ", absl::StrJoin(writable, ", "), " or ", last,
      read_only ? absl::StrCat("; augur reads ", read_only->name, " but does not write it") : "", ")"));
}

bool IsBlockType(GgmlType t) { return GgmlTypeInfo(t).block_size > 1; }
bool IsWritable(GgmlType t) { return GgmlTypeInfo(t).writable; }
int64_t BlockSize(GgmlType t) { return GgmlTypeInfo(t).block_size; }

size_t RowBytes(GgmlType t, int64_t n) {
  const GgmlTypeTraits& row = GgmlTypeInfo(t);
  return static_cast<size_t>(n / row.block_size) * row.block_bytes;
}

uint16_t Fp32ToFp16(float f) {
  const uint32_t x = Bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFF;
  if (ax >= 0x7F800000) return sign | (ax > 0x7F800000 ? 0x7E00 : 0x7C00);  // NaN, inf
  // 65520 = halfway between 65504 (largest half) and 65536; it rounds to even = inf.
  if (ax >= 0x477FF000) return sign | 0x7C00;
  if (ax < 0x38800000) {  // below 2^-14: a half subnormal (units of 2^-24) or zero
    if (ax < 0x33000000) return sign;  // below 2^-25 rounds to 0
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7FFFFF) | 0x800000;
    const uint32_t shift = 126 - e;  // value / 2^-24 = m >> shift, shift in [14, 24]
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) ++q;  // may carry into the smallest normal
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t h = ((((ax >> 23) - 127 + 15) << 10) | ((ax & 0x7FFFFF) >> 13));
  const uint32_t rem = ax & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry moves into the exponent
  return sign | static_cast<uint16_t>(h);
}

float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
  if (e == 0x1F) return FromBits(sign | 0x7F800000 | (m << 13));
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);  // exact
    return sign ? -v : v;
  }
  return FromBits(sign | ((e - 15 + 127) << 23) | (m << 13));
}

AUGUR_NO_FP_CONTRACT void QuantizeRowQ8_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock, out += kQ8_0BlockBytes) {
    float amax = 0.0f;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    PutFp16(out, d);
    for (int j = 0; j < kQuantBlock; ++j) {
      const float v = x[j] * id;
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(v)));
    }
  }
}

AUGUR_NO_FP_CONTRACT void QuantizeRowQ4_0(const float* x, int64_t n, uint8_t* out) {
  constexpr int kHalf = kQuantBlock / 2;
  for (int64_t b = 0; b < n / kQuantBlock; ++b, x += kQuantBlock, out += kQ4_0BlockBytes) {
    float amax = 0.0f, max = 0.0f;  // max: the signed value of largest magnitude
    for (int j = 0; j < kQuantBlock; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    PutFp16(out, d);
    for (int j = 0; j < kHalf; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[kHalf + j] * id;
      // x * id lies in [-8, 8], so the sum is >= 0.5 and truncation is a floor.
      const float s0 = x0 + 8.5f;
      const float s1 = x1 + 8.5f;
      const uint8_t q0 = static_cast<uint8_t>(std::min(15, static_cast<int>(s0)));
      const uint8_t q1 = static_cast<uint8_t>(std::min(15, static_cast<int>(s1)));
      out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void QuantizeRow(GgmlType type, const float* x, int64_t n, std::vector<uint8_t>* out) {
  AUGUR_CHECK(IsWritable(type), "QuantizeRow: augur does not write ", GgmlTypeName(type));
  const size_t at = out->size();
  out->resize(at + RowBytes(type, n));
  uint8_t* p = out->data() + at;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(p, x, static_cast<size_t>(n) * 4);  // little-endian host (x86-64, aarch64)
      break;
    case GgmlType::kF16:
      for (int64_t i = 0; i < n; ++i) PutFp16(p + 2 * i, x[i]);
      break;
    case GgmlType::kQ8_0: QuantizeRowQ8_0(x, n, p); break;
    case GgmlType::kQ4_0: QuantizeRowQ4_0(x, n, p); break;
    default: break;  // not writable (checked above)
  }
}

void DequantizeRow(GgmlType type, const uint8_t* in, int64_t n, float* y) {
  const absl::Status st = DequantizeRows(type, in, RowBytes(type, n), n, y);
  AUGUR_CHECK(st.ok(), st.message());
}

}  // namespace augur::gguf
