// Quantized weight formats: scheme names, int4 packing, round-to-nearest error bounds,
// padding of input widths that are not a multiple of the group.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "runtime/qweight.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

at::Tensor RandomWeight(int64_t out, int64_t in, uint64_t seed, double std = 0.05) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({out, in}, gen, torch::kFloat32) * std;
}

TEST(QuantScheme, ParsesTheTableAndRefusesTheRest) {
  for (const auto& e : SchemeTable()) {
    auto s = ParseScheme(e.name);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->name(), e.name);
  }
  EXPECT_EQ(ParseScheme("int4-g64")->group, 64);
  EXPECT_EQ(std::string(ParseScheme("int3").status().message()),
            "quantize: unknown scheme 'int3' (one of int8, int4-g32, int4-g64, int4-g128)");
  EXPECT_EQ(std::string(SchemeFromFlags("int2", 32, false).status().message()),
            "quantize: unknown --scheme 'int2' (int8 or int4)");
  EXPECT_EQ(std::string(SchemeFromFlags("int4", 48, true).status().message()),
            "quantize: --group 48 is not 32, 64 or 128");
  EXPECT_FALSE(SchemeFromFlags("int8", 32, true).ok());
  EXPECT_EQ(SchemeFromFlags("int4", 128, true)->name(), "int4-g128");
}

TEST(QuantFormat, PackUnpackRoundTrip) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor codes = at::randint(16, {5, 38}, gen, torch::kInt64).to(torch::kByte);
  const at::Tensor packed = PackInt4(codes);
  ASSERT_EQ(packed.sizes(), (std::vector<int64_t>{5, 19}));
  EXPECT_TRUE(at::equal(UnpackInt4(packed), codes));
  // Layout: low nibble = even column, high nibble = odd column.
  const uint8_t b = packed[2][7].item<uint8_t>();
  EXPECT_EQ(b & 0x0F, codes[2][14].item<uint8_t>());
  EXPECT_EQ(b >> 4, codes[2][15].item<uint8_t>());
}

// |w - deq(q(w))| <= scale / 2 for every element (0 is in every int4 range, so nothing clips
// beyond half a step), with a float rounding allowance of 1e-6 relative.
void ExpectRtnBound(const at::Tensor& w, const QuantScheme& scheme) {
  const QuantizedWeight q = QuantizeRtn(w, scheme);
  ASSERT_TRUE(ValidateQuantized(q, "w").ok());
  const at::Tensor err = (Dequantize(q) - w).abs();
  at::Tensor bound;
  if (scheme.bits == 8) {
    bound = q.scales.unsqueeze(1).expand({q.out, q.in});
  } else {
    bound = q.scales.repeat_interleave(scheme.group, 1).narrow(1, 0, q.in);
  }
  EXPECT_TRUE((err <= bound * 0.5 * (1 + 1e-6)).all().item<bool>())
      << scheme.name() << " worst excess " << (err - bound * 0.5).max().item<float>();
  // And the error is not trivially zero: these weights do need rounding.
  EXPECT_GT(err.max().item<float>(), 0.f);
}

TEST(QuantFormat, RtnErrorWithinHalfAStep) {
  const at::Tensor w = RandomWeight(24, 256, 1);
  for (const auto& e : SchemeTable()) ExpectRtnBound(w, e.scheme);
  // A skewed weight (all positive) and one with an outlier per row.
  ExpectRtnBound(w.abs() + 0.01, QuantScheme{4, 32});
  at::Tensor outl = w.clone();
  outl.select(1, 5).fill_(1.0);
  ExpectRtnBound(outl, QuantScheme{8, 0});
  ExpectRtnBound(outl, QuantScheme{4, 64});
}

TEST(QuantFormat, Int8IsSymmetricPerRow) {
  const at::Tensor w = RandomWeight(4, 64, 2);
  const QuantizedWeight q = QuantizeRtn(w, QuantScheme{8, 0});
  for (int64_t r = 0; r < 4; ++r)
    EXPECT_FLOAT_EQ(q.scales[r].item<float>(), w[r].abs().max().item<float>() / 127.f);
  EXPECT_LE(q.qweight.abs().max().item<int8_t>(), 127);
  EXPECT_EQ(q.qweight.abs().max().item<int8_t>(), 127);  // the largest |w| maps to 127
}

TEST(QuantFormat, Int4KeepsZeroExactAndPadsToTheGroup) {
  at::Tensor w = RandomWeight(3, 70, 4);  // 70 = 2 groups of 32 + 6 columns
  w[1][3] = 0.f;
  const QuantizedWeight q = QuantizeRtn(w, QuantScheme{4, 32});
  EXPECT_EQ(q.groups(), 3);
  EXPECT_EQ(q.in_padded(), 96);
  EXPECT_EQ(q.qweight.sizes(), (std::vector<int64_t>{3, 48}));
  const at::Tensor deq = Dequantize(q);
  EXPECT_EQ(deq[1][3].item<float>(), 0.f);
  // Padded columns hold the last group's zero point (value exactly 0).
  const at::Tensor codes = UnpackInt4(q.qweight);
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 70; c < 96; ++c) EXPECT_EQ(codes[r][c].item<uint8_t>(), q.zeros[r][2].item<uint8_t>());
  ExpectRtnBound(w, QuantScheme{4, 32});
  ExpectRtnBound(RandomWeight(5, 33, 5), QuantScheme{4, 128});  // narrower than one group
}

TEST(QuantFormat, ValidateNamesTheBadTensor) {
  QuantizedWeight q = QuantizeRtn(RandomWeight(8, 64, 6), QuantScheme{4, 32});
  q.scales = q.scales.narrow(1, 0, 1).contiguous();
  EXPECT_EQ(std::string(ValidateQuantized(q, "model.layers.0.mlp.up_proj").message()),
            "quantized checkpoint: model.layers.0.mlp.up_proj: scales is [8,1] Float but scheme int4-g32 and weight "
            "[8,64] need [8,2] Float (F32)");
}

}  // namespace
}  // namespace augur
