// GGUF export pieces: fp16 rounding, Q8_0/Q4_0 blocks against a plain reference written here
// from ggml-quants.c's formulas plus hand-computed blocks, the rotary row permutation, tensor
// names, and the file layout parsed back by a small independent reader.
#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/fs.h"
#include "quantize/gguf_export.h"
#include "quantize/gguf_quant.h"
#include "quantize/gguf_writer.h"

namespace augur::gguf {
namespace {

uint16_t HalfBits(float f) { return c10::Half(f).x; }  // c10: IEEE round-to-nearest-even

// --- the reference: ggml's quantize_row_q8_0_ref / quantize_row_q4_0_ref, one block ---
std::vector<uint8_t> RefQ8_0(const float* x) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  volatile float d = amax / 127;  // volatile: two float roundings, never a fused multiply-add
  volatile float id = d != 0 ? 1.0f / d : 0.0f;
  std::vector<uint8_t> out(34);
  const uint16_t h = HalfBits(d);
  std::memcpy(out.data(), &h, 2);
  for (int j = 0; j < 32; ++j) {
    volatile float v = x[j] * id;
    out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::roundf(v)));
  }
  return out;
}

std::vector<uint8_t> RefQ4_0(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
  volatile float d = max / -8;
  volatile float id = d != 0 ? 1.0f / d : 0.0f;
  std::vector<uint8_t> out(18);
  const uint16_t h = HalfBits(d);
  std::memcpy(out.data(), &h, 2);
  int q[32];
  for (int j = 0; j < 32; ++j) {
    volatile float v = x[j] * id;
    volatile float s = v + 8.5f;
    q[j] = std::min(15, static_cast<int>(static_cast<int8_t>(s)));
  }
  for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  return out;
}

std::vector<uint8_t> Quantize(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> out;
  QuantizeRow(t, x.data(), static_cast<int64_t>(x.size()), &out);
  return out;
}

TEST(GgufFp16, MatchesC10HalfRoundToNearestEven) {
  std::mt19937 rng(7);
  std::vector<float> xs = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, 1e9f, -1e9f, 5.96e-8f, 2.98e-8f,
                           2.9802322e-8f /* 2^-25: ties to 0 */, 6.1035156e-5f /* 2^-14 */, 6.1e-5f,
                           1.0f + 1.0f / 2048 /* halfway, ties to even 1.0 */, 1.0f + 3.0f / 2048,
                           std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = bits(rng);
    if (i % 2) u = (u & 0x807FFFFF) | ((100 + u % 45) << 23);  // exponents around half's range
    float f;
    std::memcpy(&f, &u, 4);
    if (!std::isnan(f)) xs.push_back(f);
  }
  for (float f : xs) ASSERT_EQ(Fp32ToFp16(f), HalfBits(f)) << f;
  for (uint32_t h = 0; h < 65536; ++h) {
    c10::Half half;
    half.x = static_cast<uint16_t>(h);
    const float want = static_cast<float>(half);
    if (std::isnan(want)) EXPECT_TRUE(std::isnan(Fp16ToFp32(static_cast<uint16_t>(h))));
    else ASSERT_EQ(Fp16ToFp32(static_cast<uint16_t>(h)), want) << h;
  }
  EXPECT_TRUE(std::isnan(Fp16ToFp32(Fp32ToFp16(std::nanf("")))));
}

TEST(GgufQuant, Q8_0HandComputedBlock) {
  // amax 127 -> d = 1 exactly, so q = roundf(x): halves go away from zero (2.5 -> 3, -2.5 -> -3).
  std::vector<float> x(32, 0.0f);
  x[0] = 127; x[1] = 2.5f; x[2] = -2.5f; x[3] = 0.5f; x[4] = -0.5f; x[5] = 1.49f; x[6] = -126.6f; x[31] = 3;
  auto b = Quantize(GgmlType::kQ8_0, x);
  ASSERT_EQ(b.size(), 34u);
  EXPECT_EQ(b[0], 0x00);  // fp16 1.0 = 0x3C00, little-endian
  EXPECT_EQ(b[1], 0x3C);
  const int8_t want[] = {127, 3, -3, 1, -1, 1, -127};
  for (int j = 0; j < 7; ++j) EXPECT_EQ(static_cast<int8_t>(b[2 + j]), want[j]) << j;
  EXPECT_EQ(static_cast<int8_t>(b[2 + 31]), 3);
  EXPECT_EQ(b, RefQ8_0(x.data()));
}

TEST(GgufQuant, Q4_0HandComputedBlock) {
  // max = -8 (largest magnitude, negative) -> d = 1, id = 1, q = min(15, trunc(x + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = -8; x[1] = 2.5f; x[2] = -2.5f; x[3] = 7.9f; x[16] = 1; x[17] = -1; x[31] = 6.49f;
  auto b = Quantize(GgmlType::kQ4_0, x);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(b[0] | (b[1] << 8), 0x3C00);
  // q: x[0]=-8 -> 0, 2.5 -> 11 (half up), -2.5 -> 6 (half toward +inf), 7.9 -> 15 (clamped 16.4),
  // zeros -> 8; second half: 1 -> 9, -1 -> 7, 6.49 -> 14.
  EXPECT_EQ(b[2 + 0], 0 | (9 << 4));
  EXPECT_EQ(b[2 + 1], 11 | (7 << 4));
  EXPECT_EQ(b[2 + 2], 6 | (8 << 4));
  EXPECT_EQ(b[2 + 3], 15 | (8 << 4));
  EXPECT_EQ(b[2 + 15], 8 | (14 << 4));
  EXPECT_EQ(b, RefQ4_0(x.data()));
}

TEST(GgufQuant, Q4_0MagnitudeTieTakesTheFirstAndClampsTheOpposite) {
  std::vector<float> x(32, 0.0f);
  x[0] = 8; x[1] = -8;  // |8| == |-8|: the first wins, d = 8 / -8 = -1
  auto b = Quantize(GgmlType::kQ4_0, x);
  EXPECT_EQ(b[0] | (b[1] << 8), 0xBC00);  // fp16 -1.0
  EXPECT_EQ(b[2] & 0x0F, 0);              // 8 * -1 + 8.5 -> 0 -> dequantized (0-8)*-1 = 8
  EXPECT_EQ(b[3] & 0x0F, 15);             // -8 * -1 + 8.5 = 16.5 -> clamped to 15 -> -7
  float y[32];
  DequantizeRow(GgmlType::kQ4_0, b.data(), 32, y);
  EXPECT_EQ(y[0], 8.0f);
  EXPECT_EQ(y[1], -7.0f);
}

TEST(GgufQuant, ZeroAndAllNegativeBlocks) {
  std::vector<float> zeros(64, 0.0f);
  auto q8 = Quantize(GgmlType::kQ8_0, zeros);
  for (uint8_t v : q8) EXPECT_EQ(v, 0);
  auto q4 = Quantize(GgmlType::kQ4_0, zeros);
  for (int blk = 0; blk < 2; ++blk) {
    EXPECT_EQ(q4[blk * 18] | (q4[blk * 18 + 1] << 8), 0x8000);  // d = 0 / -8 = -0.0, as ggml writes it
    for (int j = 2; j < 18; ++j) EXPECT_EQ(q4[blk * 18 + j], 0x88);
  }
  std::vector<float> neg(32);
  for (int j = 0; j < 32; ++j) neg[j] = -0.25f * (j + 1);  // max = -8 -> d = 1
  auto b = Quantize(GgmlType::kQ4_0, neg);
  EXPECT_EQ(b[0] | (b[1] << 8), 0x3C00);
  EXPECT_EQ(b, RefQ4_0(neg.data()));
  float y[32];
  DequantizeRow(GgmlType::kQ4_0, b.data(), 32, y);
  EXPECT_EQ(y[31], -8.0f);
  auto b8 = Quantize(GgmlType::kQ8_0, neg);
  EXPECT_EQ(b8, RefQ8_0(neg.data()));
  EXPECT_EQ(static_cast<int8_t>(b8[2 + 31]), -127);
}

// Random rows: byte-exact to the reference, and within the format's error bound.
// Q8_0: |x - q*d16| <= d/2 + 127*|d - d16| (rounding of q, then of the fp16 scale).
// Q4_0: <= |d| + 8*|d - d16| (|d| not |d|/2: the value opposite to max clamps from 8d to 7d).
TEST(GgufQuant, RandomRowsMatchReferenceAndErrorBounds) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int trial = 0; trial < 300; ++trial) {
    const float scale = std::pow(10.0f, static_cast<float>(trial % 7) - 4);
    std::vector<float> x(32 * 8);
    for (auto& v : x) v = normal(rng) * scale;
    if (trial % 5 == 0) x[3] = x[40] = 0.0f;
    auto q8 = Quantize(GgmlType::kQ8_0, x);
    auto q4 = Quantize(GgmlType::kQ4_0, x);
    std::vector<float> y8(x.size()), y4(x.size());
    DequantizeRow(GgmlType::kQ8_0, q8.data(), static_cast<int64_t>(x.size()), y8.data());
    DequantizeRow(GgmlType::kQ4_0, q4.data(), static_cast<int64_t>(x.size()), y4.data());
    for (int blk = 0; blk < 8; ++blk) {
      const float* xb = x.data() + blk * 32;
      ASSERT_EQ(std::vector<uint8_t>(q8.begin() + blk * 34, q8.begin() + (blk + 1) * 34), RefQ8_0(xb));
      ASSERT_EQ(std::vector<uint8_t>(q4.begin() + blk * 18, q4.begin() + (blk + 1) * 18), RefQ4_0(xb));
      float amax = 0, max = 0;
      for (int j = 0; j < 32; ++j)
        if (amax < std::fabs(xb[j])) amax = std::fabs(xb[j]), max = xb[j];
      const float d8 = amax / 127, d4 = std::fabs(max / 8);
      const float tol8 = d8 / 2 + 127 * std::fabs(d8 - Fp16ToFp32(Fp32ToFp16(d8))) + 1e-7f * amax;
      const float tol4 = d4 + 8 * std::fabs(d4 - Fp16ToFp32(Fp32ToFp16(d4))) + 1e-7f * amax;
      for (int j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(y8[blk * 32 + j] - xb[j]), tol8) << trial << " " << blk << " " << j;
        ASSERT_LE(std::fabs(y4[blk * 32 + j] - xb[j]), tol4) << trial << " " << blk << " " << j;
      }
    }
  }
}

TEST(GgufExport, RopePermutationInterleavesHalves) {
  // 2 heads of dim 4, 3 columns: within a head rows (0,1 | 2,3) become (0,2,1,3).
  std::vector<float> in(8 * 3), out(8 * 3);
  for (int i = 0; i < 24; ++i) in[i] = static_cast<float>(i);
  PermuteForLlamaRope(in.data(), out.data(), 2, 4, 3);
  const int order[] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(out[r * 3 + c], in[order[r] * 3 + c]) << r << "," << c;
}

TEST(GgufExport, TensorNames) {
  EXPECT_EQ(GgufTensorName("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(GgufTensorName("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ(GgufTensorName("lm_head.weight"), "output.weight");
  EXPECT_EQ(GgufTensorName("model.layers.0.input_layernorm.weight"), "blk.0.attn_norm.weight");
  EXPECT_EQ(GgufTensorName("model.layers.12.self_attn.q_proj.weight"), "blk.12.attn_q.weight");
  EXPECT_EQ(GgufTensorName("model.layers.3.self_attn.k_proj.bias"), "blk.3.attn_k.bias");
  EXPECT_EQ(GgufTensorName("model.layers.3.self_attn.o_proj.weight"), "blk.3.attn_output.weight");
  EXPECT_EQ(GgufTensorName("model.layers.1.post_attention_layernorm.weight"), "blk.1.ffn_norm.weight");
  EXPECT_EQ(GgufTensorName("model.layers.1.mlp.down_proj.weight"), "blk.1.ffn_down.weight");
  EXPECT_EQ(GgufTensorName("model.layers.x.mlp.up_proj.weight"), "");
  EXPECT_EQ(GgufTensorName("model.layers.1.mlp.other.weight"), "");
}

// --- an independent little reader for the layout of docs/FORMATS.md ---
struct Reader {
  const std::string& s;
  size_t p = 0;
  template <typename T>
  T get() {
    T v;
    EXPECT_LE(p + sizeof(T), s.size());
    std::memcpy(&v, s.data() + p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    std::string out = s.substr(p, n);
    p += n;
    return out;
  }
};

TEST(GgufWriterTest, HeaderMetadataAndTensorsParseBack) {
  GgufWriter w;
  w.SetU8("t.u8", 200);
  w.SetI8("t.i8", -5);
  w.SetU16("t.u16", 60000);
  w.SetI16("t.i16", -30000);
  w.SetI32("t.i32", -7);
  w.SetU64("t.u64", 1ull << 40);
  w.SetI64("t.i64", -(1ll << 40));
  w.SetF32("t.f32", 0.25f);
  w.SetF64("t.f64", -1.5);
  w.SetBool("t.bool", true);
  w.SetString("t.str", "héllo");
  w.SetStringArray("t.strs", {"a", "", "▁b"});
  w.SetF32Array("t.f32s", {1.0f, -2.0f});
  w.SetI32Array("t.i32s", {3, -4, 5});
  std::vector<float> a(2 * 32), b(3 * 64);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * i;
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::sin(static_cast<float>(i));
  std::vector<uint8_t> qa, qb, qc;
  for (int r = 0; r < 2; ++r) QuantizeRow(GgmlType::kF32, a.data() + r * 32, 32, &qa);
  for (int r = 0; r < 3; ++r) QuantizeRow(GgmlType::kQ8_0, b.data() + r * 64, 64, &qb);
  QuantizeRow(GgmlType::kF16, a.data(), 5, &qc);
  w.AddTensor("a", {2, 32}, GgmlType::kF32, qa);
  w.AddTensor("b", {3, 64}, GgmlType::kQ8_0, qb);
  w.AddTensor("c", {5}, GgmlType::kF16, qc);

  const std::string dir = MakeTempDir("gguf_test_");
  ASSERT_FALSE(dir.empty());
  const std::string path = dir + "/x.gguf";
  ASSERT_TRUE(w.Write(path).ok());
  auto file = ReadFile(path);
  ASSERT_TRUE(file.ok());
  const std::string& s = *file;
  EXPECT_EQ(s.size(), w.file_size());
  EXPECT_FALSE(FileExists(TempPathFor(path)));

  Reader r{s};
  EXPECT_EQ(s.substr(0, 4), "GGUF");
  r.p = 4;
  EXPECT_EQ(r.get<uint32_t>(), 3u);
  EXPECT_EQ(r.get<uint64_t>(), 3u);   // tensors
  EXPECT_EQ(r.get<uint64_t>(), 15u);  // general.alignment + 14
  EXPECT_EQ(r.str(), "general.alignment");
  EXPECT_EQ(r.get<uint32_t>(), 4u);
  EXPECT_EQ(r.get<uint32_t>(), 32u);
  auto key = [&](const char* k, uint32_t type) {
    EXPECT_EQ(r.str(), k);
    EXPECT_EQ(r.get<uint32_t>(), type) << k;
  };
  key("t.u8", 0); EXPECT_EQ(r.get<uint8_t>(), 200);
  key("t.i8", 1); EXPECT_EQ(r.get<int8_t>(), -5);
  key("t.u16", 2); EXPECT_EQ(r.get<uint16_t>(), 60000);
  key("t.i16", 3); EXPECT_EQ(r.get<int16_t>(), -30000);
  key("t.i32", 5); EXPECT_EQ(r.get<int32_t>(), -7);
  key("t.u64", 10); EXPECT_EQ(r.get<uint64_t>(), 1ull << 40);
  key("t.i64", 11); EXPECT_EQ(r.get<int64_t>(), -(1ll << 40));
  key("t.f32", 6); EXPECT_EQ(r.get<float>(), 0.25f);
  key("t.f64", 12); EXPECT_EQ(r.get<double>(), -1.5);
  key("t.bool", 7); EXPECT_EQ(r.get<uint8_t>(), 1);
  key("t.str", 8); EXPECT_EQ(r.str(), "héllo");
  key("t.strs", 9);
  EXPECT_EQ(r.get<uint32_t>(), 8u);
  EXPECT_EQ(r.get<uint64_t>(), 3u);
  EXPECT_EQ(r.str(), "a"); EXPECT_EQ(r.str(), ""); EXPECT_EQ(r.str(), "▁b");
  key("t.f32s", 9);
  EXPECT_EQ(r.get<uint32_t>(), 6u);
  EXPECT_EQ(r.get<uint64_t>(), 2u);
  EXPECT_EQ(r.get<float>(), 1.0f); EXPECT_EQ(r.get<float>(), -2.0f);
  key("t.i32s", 9);
  EXPECT_EQ(r.get<uint32_t>(), 5u);
  EXPECT_EQ(r.get<uint64_t>(), 3u);
  EXPECT_EQ(r.get<int32_t>(), 3); EXPECT_EQ(r.get<int32_t>(), -4); EXPECT_EQ(r.get<int32_t>(), 5);

  struct Info { std::string name; std::vector<uint64_t> ne; uint32_t type; uint64_t offset; };
  std::vector<Info> infos;
  for (int t = 0; t < 3; ++t) {
    Info in;
    in.name = r.str();
    const uint32_t nd = r.get<uint32_t>();
    for (uint32_t d = 0; d < nd; ++d) in.ne.push_back(r.get<uint64_t>());
    in.type = r.get<uint32_t>();
    in.offset = r.get<uint64_t>();
    infos.push_back(in);
  }
  EXPECT_EQ(infos[0].name, "a");
  EXPECT_EQ(infos[0].ne, (std::vector<uint64_t>{32, 2}));  // innermost first
  EXPECT_EQ(infos[0].type, 0u);
  EXPECT_EQ(infos[1].ne, (std::vector<uint64_t>{64, 3}));
  EXPECT_EQ(infos[1].type, 8u);
  EXPECT_EQ(infos[2].ne, (std::vector<uint64_t>{5}));
  EXPECT_EQ(infos[2].type, 1u);
  const size_t data_start = (r.p + 31) / 32 * 32;
  for (size_t i = r.p; i < data_start; ++i) EXPECT_EQ(s[i], '\0');
  EXPECT_EQ(infos[0].offset, 0u);
  EXPECT_EQ(infos[1].offset, 256u);                 // 2*32*4 = 256, already aligned
  // b: 3 rows of 64 values in Q8_0 = 6 blocks * 34 bytes = 204 bytes at 256, padded to 480.
  EXPECT_EQ(infos[2].offset, 480u);
  EXPECT_EQ(std::memcmp(s.data() + data_start + infos[0].offset, qa.data(), qa.size()), 0);
  EXPECT_EQ(std::memcmp(s.data() + data_start + infos[1].offset, qb.data(), qb.size()), 0);
  EXPECT_EQ(std::memcmp(s.data() + data_start + infos[2].offset, qc.data(), qc.size()), 0);
  EXPECT_EQ(s.size(), data_start + 512);  // c: f16 [5] = 10 bytes at 480, padded to 512
  RemoveTree(dir);
}

}  // namespace
}  // namespace augur::gguf
