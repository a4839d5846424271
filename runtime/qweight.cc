#include "runtime/qweight.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/safetensors.h"

namespace augur {

QuantizedWeight QuantizedWeight::to(c10::Device device) const {
  QuantizedWeight w = *this;
  w.qweight = qweight.to(device);
  w.scales = scales.to(device);
  if (zeros.defined()) w.zeros = zeros.to(device);
  return w;
}

int64_t QuantizedWeight::bytes() const {
  int64_t n = qweight.numel() * qweight.element_size() + scales.numel() * scales.element_size();
  if (zeros.defined()) n += zeros.numel() * zeros.element_size();
  return n;
}

absl::Status ValidateQuantized(const QuantizedWeight& w, const std::string& where) {
  auto bad = [&](const std::string& what, const at::Tensor& t, const std::vector<int64_t>& shape,
                 const char* dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantized checkpoint: ", where, ": ", what, " is ", t.defined() ? ShapeString(t.sizes()) : "missing", " ",
        t.defined() ? std::string(c10::toString(t.scalar_type())) : "", " but scheme ", w.scheme.name(),
        " and weight [", w.out, ",", w.in, "] need ", ShapeString(shape), " ", dtype));
  };
  auto ok = [](const at::Tensor& t, const std::vector<int64_t>& shape, c10::ScalarType st) {
    return t.defined() && t.sizes().vec() == shape && t.scalar_type() == st;
  };
  if (w.scheme.bits == 8) {
    if (!ok(w.qweight, {w.out, w.in}, at::kChar)) return bad("qweight", w.qweight, {w.out, w.in}, "Char (I8)");
    if (!ok(w.scales, {w.out}, at::kFloat)) return bad("scales", w.scales, {w.out}, "Float (F32)");
    return absl::OkStatus();
  }
  if (w.scheme.bits != 4) return absl::InvalidArgumentError(absl::StrCat("quantized checkpoint: ", where, ": bits ", w.scheme.bits));
  const int64_t g = w.groups();
  if (!ok(w.qweight, {w.out, w.in_padded() / 2}, at::kByte))
    return bad("qweight", w.qweight, {w.out, w.in_padded() / 2}, "Byte (U8)");
  if (!ok(w.scales, {w.out, g}, at::kFloat)) return bad("scales", w.scales, {w.out, g}, "Float (F32)");
  if (!ok(w.zeros, {w.out, g}, at::kByte)) return bad("zeros", w.zeros, {w.out, g}, "Byte (U8)");
  return absl::OkStatus();
}

GroupParams Int8Params(const float* w, int64_t n, int64_t stride) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i * stride]));
  GroupParams p;
  p.scale = amax > 0 ? amax / 127.f : 1.f;
  return p;
}

GroupParams Int4Params(const float* w, int64_t n, int64_t stride) {
  float lo = 0, hi = 0;  // the range always holds 0, so a zero weight stays exactly zero
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, w[i * stride]);
    hi = std::max(hi, w[i * stride]);
  }
  GroupParams p;
  if (hi == lo) return p;  // all zero: scale 1, zero 0
  p.scale = (hi - lo) / 15.f;
  p.zero = static_cast<int>(std::min(15.f, std::max(0.f, std::nearbyint(-lo / p.scale))));
  return p;
}

QuantizedWeight QuantizeRtn(const at::Tensor& weight, const QuantScheme& scheme) {
  const at::Tensor w = weight.detach().to(at::kCPU, at::kFloat).contiguous();
  const int64_t out = w.size(0), in = w.size(1);
  const float* pw = w.data_ptr<float>();
  if (scheme.bits == 8) {
    at::Tensor codes = at::empty({out, in}, at::kChar), scales = at::empty({out}, at::kFloat);
    int8_t* pc = codes.data_ptr<int8_t>();
    for (int64_t r = 0; r < out; ++r) {
      const GroupParams p = Int8Params(pw + r * in, in);
      scales.data_ptr<float>()[r] = p.scale;
      for (int64_t c = 0; c < in; ++c) pc[r * in + c] = static_cast<int8_t>(Int8Code(pw[r * in + c], p.scale));
    }
    return MakeQuantized(scheme, out, in, codes, scales, at::Tensor());
  }
  const int64_t g = scheme.group, ng = (in + g - 1) / g;
  at::Tensor codes = at::empty({out, in}, at::kByte), scales = at::empty({out, ng}, at::kFloat),
             zeros = at::empty({out, ng}, at::kByte);
  uint8_t* pc = codes.data_ptr<uint8_t>();
  for (int64_t r = 0; r < out; ++r)
    for (int64_t k = 0; k < ng; ++k) {
      const int64_t c0 = k * g, c1 = std::min(in, c0 + g);
      const GroupParams p = Int4Params(pw + r * in + c0, c1 - c0);
      scales.data_ptr<float>()[r * ng + k] = p.scale;
      zeros.data_ptr<uint8_t>()[r * ng + k] = static_cast<uint8_t>(p.zero);
      for (int64_t c = c0; c < c1; ++c) pc[r * in + c] = static_cast<uint8_t>(Int4Code(pw[r * in + c], p));
    }
  return MakeQuantized(scheme, out, in, codes, scales, zeros);
}

QuantizedWeight MakeQuantized(const QuantScheme& scheme, int64_t out, int64_t in, const at::Tensor& codes,
                              const at::Tensor& scales, const at::Tensor& zeros) {
  QuantizedWeight q;
  q.scheme = scheme;
  q.out = out;
  q.in = in;
  q.scales = scales.to(at::kCPU, at::kFloat).contiguous();
  if (scheme.bits == 8) {
    q.qweight = codes.to(at::kCPU, at::kChar).contiguous();
    return q;
  }
  q.zeros = zeros.to(at::kCPU, at::kByte).contiguous();
  const int64_t pad = q.in_padded();
  at::Tensor full = at::empty({out, pad}, at::kByte);
  full.narrow(1, 0, in).copy_(codes);
  if (pad > in) {
    // Padded columns (all in the last group) take that group's zero point: value exactly 0.
    full.narrow(1, in, pad - in).copy_(q.zeros.select(1, q.groups() - 1).unsqueeze(1).expand({out, pad - in}));
  }
  q.qweight = PackInt4(full);
  return q;
}

at::Tensor PackInt4(const at::Tensor& codes) {
  const at::Tensor c = codes.to(at::kCPU, at::kByte).contiguous();
  TORCH_CHECK(c.dim() == 2 && c.size(1) % 2 == 0, "PackInt4: codes must be [rows, even], got ", c.sizes());
  const int64_t rows = c.size(0), n = c.size(1);
  at::Tensor packed = at::empty({rows, n / 2}, at::kByte);
  const uint8_t* pc = c.data_ptr<uint8_t>();
  uint8_t* pp = packed.data_ptr<uint8_t>();
  for (int64_t i = 0; i < rows * n / 2; ++i)
    pp[i] = static_cast<uint8_t>((pc[2 * i] & 0x0F) | ((pc[2 * i + 1] & 0x0F) << 4));
  return packed;
}

at::Tensor UnpackInt4(const at::Tensor& packed) {
  const at::Tensor p = packed.to(at::kCPU, at::kByte).contiguous();
  const int64_t rows = p.size(0), n = p.size(1) * 2;
  at::Tensor codes = at::empty({rows, n}, at::kByte);
  const uint8_t* pp = p.data_ptr<uint8_t>();
  uint8_t* pc = codes.data_ptr<uint8_t>();
  for (int64_t i = 0; i < rows * n / 2; ++i) {
    pc[2 * i] = pp[i] & 0x0F;
    pc[2 * i + 1] = pp[i] >> 4;
  }
  return codes;
}

at::Tensor Dequantize(const QuantizedWeight& qw) {
  const QuantizedWeight w = qw.to(at::kCPU);
  at::Tensor out = at::empty({w.out, w.in}, at::kFloat);
  float* po = out.data_ptr<float>();
  const float* ps = w.scales.data_ptr<float>();
  if (w.scheme.bits == 8) {
    const int8_t* pq = w.qweight.data_ptr<int8_t>();
    for (int64_t r = 0; r < w.out; ++r)
      for (int64_t c = 0; c < w.in; ++c) po[r * w.in + c] = Int8Value(pq[r * w.in + c], ps[r]);
    return out;
  }
  const at::Tensor codes = UnpackInt4(w.qweight);
  const uint8_t* pc = codes.data_ptr<uint8_t>();
  const uint8_t* pz = w.zeros.data_ptr<uint8_t>();
  const int64_t ng = w.groups(), pad = w.in_padded();
  for (int64_t r = 0; r < w.out; ++r)
    for (int64_t c = 0; c < w.in; ++c) {
      const int64_t k = c / w.scheme.group;
      const GroupParams p{ps[r * ng + k], pz[r * ng + k]};
      po[r * w.in + c] = Int4Value(pc[r * pad + c], p);
    }
  return out;
}

}  // namespace augur
