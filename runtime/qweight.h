// One quantized linear weight (docs/FORMATS.md, "Quantized checkpoint"), round-to-nearest
// quantization, int4 packing, and the reference dequantization every kernel is tested against.
//
// Shapes: the fp32 weight is [out, in] (transformers' Linear layout). int4 pads the input
// width to a multiple of the group (in_padded); padded columns hold the group's zero point, so
// they dequantize to exactly 0 and no kernel needs to read them.
#pragma once

#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/status.h"
#include "runtime/scheme.h"

namespace augur {

struct QuantizedWeight {
  QuantScheme scheme;
  int64_t out = 0, in = 0;
  // int8: int8 [out, in]. int4: uint8 [out, in_padded/2]; byte j of a row holds column 2j in
  // its low nibble and column 2j+1 in its high nibble.
  at::Tensor qweight;
  at::Tensor scales;  // float32: int8 [out]; int4 [out, groups]
  at::Tensor zeros;   // int4: uint8 [out, groups], values 0..15; int8: undefined

  int64_t groups() const { return scheme.bits == 4 ? (in + scheme.group - 1) / scheme.group : 1; }
  int64_t in_padded() const { return scheme.bits == 4 ? groups() * scheme.group : in; }
  QuantizedWeight to(c10::Device device) const;
  int64_t bytes() const;  // payload bytes (qweight + scales + zeros)
};

// Shapes and dtypes agree with the scheme and [out, in]; `where` names the weight in errors.
absl::Status ValidateQuantized(const QuantizedWeight& w, const std::string& where);

// ---- scalar rules, shared by RTN, GPTQ and fake-quant so all three round identically ------

struct GroupParams {
  float scale = 1;
  int zero = 0;  // int4 only
};
// int8: scale = max|w| / 127 (1 when all zero). int4: the range [min(w, 0), max(w, 0)]
// split into 15 steps, zero = round(-min / scale); 0 is always representable exactly.
GroupParams Int8Params(const float* w, int64_t n, int64_t stride = 1);
GroupParams Int4Params(const float* w, int64_t n, int64_t stride = 1);

inline int Int8Code(float w, float scale) {
  const float q = std::nearbyint(w / scale);
  return static_cast<int>(q < -127.f ? -127.f : (q > 127.f ? 127.f : q));
}
inline int Int4Code(float w, const GroupParams& p) {
  const float q = std::nearbyint(w / p.scale) + static_cast<float>(p.zero);
  return static_cast<int>(q < 0.f ? 0.f : (q > 15.f ? 15.f : q));
}
inline float Int8Value(int code, float scale) { return static_cast<float>(code) * scale; }
inline float Int4Value(int code, const GroupParams& p) { return static_cast<float>(code - p.zero) * p.scale; }

// ---- tensors -------------------------------------------------------------------------------

// Round-to-nearest of a float weight [out, in] (any float dtype; computed in float32 on CPU).
QuantizedWeight QuantizeRtn(const at::Tensor& weight, const QuantScheme& scheme);

// The weight the quantized one stands for: float32 [out, in] on the CPU, element by element
// from the definition (the reference the kernels are compared against).
at::Tensor Dequantize(const QuantizedWeight& w);

// uint8 codes [rows, n] (n even, values 0..15) <-> packed uint8 [rows, n/2].
at::Tensor PackInt4(const at::Tensor& codes);
at::Tensor UnpackInt4(const at::Tensor& packed);

// Builds the stored form from per-element codes (int8 [out, in] or int4 0..15 [out, in],
// unpadded) and the group parameters [out, groups]; pads int4 with the zero points.
QuantizedWeight MakeQuantized(const QuantScheme& scheme, int64_t out, int64_t in, const at::Tensor& codes,
                              const at::Tensor& scales, const at::Tensor& zeros);

}  // namespace augur
