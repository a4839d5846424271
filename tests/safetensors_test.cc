// core/safetensors: round trips for every dtype, a hand-made file in the reference layout,
// one test per kind of corrupt file (crafted byte by byte), and sharded directories.
#include "core/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <dirent.h>
#include <ftw.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

#include "core/fs.h"

namespace augur {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;


class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("augur_st_");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { RemoveTree(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // A file with the given header text and data bytes; `length` overrides the header length.
  std::string Craft(const std::string& header, const std::string& data, int64_t length = -1) {
    uint64_t n = length >= 0 ? static_cast<uint64_t>(length) : header.size();
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    bytes += header + data;
    std::string path = Path("crafted.safetensors");
    std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
    return path;
  }

  // Opens `path` and expects a one-line error naming the file and containing `problem`.
  void ExpectError(const std::string& path, const std::string& problem) {
    auto f = SafetensorsFile::Open(path);
    ASSERT_FALSE(f.ok()) << "opened a bad file";
    std::string msg(f.status().message());
    EXPECT_THAT(msg, HasSubstr("safetensors: " + path + ": "));
    EXPECT_THAT(msg, HasSubstr(problem));
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }

  std::string dir_;
};

std::string Floats(std::vector<float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

TEST_F(SafetensorsTest, RoundTripsEveryDtypeAndMetadata) {
  torch::manual_seed(0);
  NamedTensors in = {
      {"f32", torch::randn({3, 5})},
      {"f16", torch::randn({4}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"f64", torch::randn({2}).to(torch::kFloat64)},
      {"i8", torch::randint(-128, 127, {7}).to(torch::kInt8)},
      {"u8", torch::randint(0, 255, {3, 3}).to(torch::kUInt8)},
      {"i32", torch::randint(-100000, 100000, {5}).to(torch::kInt32)},
      {"i64", torch::tensor({int64_t{1} << 40, int64_t{-3}})},
      {"mask", torch::tensor({true, false, false, true, true})},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::arange(12, torch::kFloat32).view({3, 4}).t()},  // non-contiguous
  };
  std::string path = Path("all.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, in, {{"note", "hello"}}).ok());
  EXPECT_FALSE(FileExists(TempPathFor(path)));

  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->tensors().size(), in.size());
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  EXPECT_EQ((*f)->metadata().at("note"), "hello");
  for (const auto& [name, t] : in) {
    auto got = (*f)->Read(name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got->sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(*got, t)) << name;
  }
  EXPECT_EQ((*f)->Find("i64")->dtype, StDtype::kI64);
  EXPECT_EQ((*f)->Find("mask")->dtype, StDtype::kBool);
  EXPECT_EQ((*f)->Find("bf16")->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE((*f)->Read("nope").ok());

  // The data buffer starts 8-byte aligned, as the reference writer makes it.
  std::string bytes = *ReadFile(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  // Written in the given order: f32 first at offset 0.
  EXPECT_EQ((*f)->Find("f32")->begin, 0u);
  EXPECT_EQ((*f)->Find("f16")->begin, 60u);
}

TEST_F(SafetensorsTest, ReadsAHandMadeFileInTheReferenceLayout) {
  // What safetensors.torch.save_file writes for {"a": [1, 2], "b": [[3], [4], [5]] (F16)}:
  // offsets relative to the data buffer, keys in any order.
  std::string header =
      R"({"b":{"dtype":"F16","shape":[3,1],"data_offsets":[8,14]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  at::Tensor b = torch::tensor({3.f, 4.f, 5.f}).to(torch::kFloat16);
  std::string data = Floats({1.f, 2.f}) + std::string(static_cast<const char*>(b.data_ptr()), 6);
  std::string path = Craft(header, data);
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(torch::equal(*(*f)->Read("a"), torch::tensor({1.f, 2.f})));
  EXPECT_TRUE(torch::equal(*(*f)->Read("b"), b.view({3, 1})));
  EXPECT_TRUE((*f)->metadata().empty());
  EXPECT_EQ((*f)->tensors()[0].name, "a");  // data order
}

TEST_F(SafetensorsTest, ZeroTensorsIsValid) {
  auto f = SafetensorsFile::Open(Craft("{}", ""));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE((*f)->tensors().empty());
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  auto f = SafetensorsFile::Open(Path("nope.safetensors"));
  EXPECT_TRUE(absl::IsNotFound(f.status()));
  EXPECT_THAT(std::string(f.status().message()), HasSubstr("nope.safetensors"));
}

TEST_F(SafetensorsTest, FileShorterThanTheLengthField) {
  std::string path = Path("short.safetensors");
  std::ofstream(path, std::ios::binary).write("\x04\0\0", 3);
  ExpectError(path, "file is 3 bytes, shorter than the 8-byte header length");
  std::ofstream(path, std::ios::binary | std::ios::trunc);
  ExpectError(path, "file is 0 bytes");
}

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFile) {
  std::string path = Craft("{}", "", 1000);
  ExpectError(path, "header length 1000 exceeds file size 10");
  // A huge length (garbage, or a file that is not safetensors at all) must not overflow.
  path = Craft("{}", "", int64_t{9000000000000000000});
  ExpectError(path, "header length 9000000000000000000 exceeds file size 10");
}

TEST_F(SafetensorsTest, HeaderNotJson) {
  ExpectError(Craft("{\"a\": [1, 2", ""), "header is not valid JSON");
  ExpectError(Craft("PK\x03\x04 zip", ""), "header is not valid JSON");
}

TEST_F(SafetensorsTest, HeaderNotAnObject) {
  ExpectError(Craft("[1,2,3]", ""), "header is not a JSON object");
  ExpectError(Craft(R"({"a": 5})", ""), "header entry for tensor a is not a JSON object");
}

TEST_F(SafetensorsTest, MalformedEntries) {
  ExpectError(Craft(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", Floats({1})), "tensor a has no \"dtype\" string");
  ExpectError(Craft(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", Floats({1})), "tensor a has no \"shape\" array");
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", Floats({1})),
              "not a non-negative integer");
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", Floats({1})),
              "tensor a has no \"data_offsets\" pair");
  ExpectError(Craft(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", Floats({1})), "empty name");
  ExpectError(Craft(R"({"__metadata__":{"format":1}})", ""), "__metadata__ value for \"format\" is not a string");
  ExpectError(Craft(R"({"__metadata__":[]})", ""), "__metadata__ is not a JSON object");
}

TEST_F(SafetensorsTest, UnknownDtype) {
  ExpectError(Craft(R"({"a":{"dtype":"Q4_K","shape":[4],"data_offsets":[0,4]}})", Floats({1})),
              "tensor a has unsupported dtype \"Q4_K\"");
}

TEST_F(SafetensorsTest, OffsetsOutOfRange) {
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", Floats({1})),
              "tensor a has data_offsets [0,8] past the end of the data (4 bytes)");
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", Floats({1})),
              "tensor a has data_offsets [4,0] with begin after end");
}

TEST_F(SafetensorsTest, ShapeTimesDtypeDisagreesWithByteRange) {
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", Floats({1, 2})),
              "tensor a has shape [3] and dtype F32 (12 bytes) but data_offsets [0,8] span 8 bytes");
  ExpectError(Craft(R"({"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}})", Floats({1})),
              "(8 bytes) but data_offsets [0,4] span 4 bytes");
  // A shape whose byte size overflows 64 bits.
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", Floats({1})),
              "overflows");
}

TEST_F(SafetensorsTest, OverlappingData) {
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                    Floats({1, 2, 3})),
              "tensors a [0,8] and b [4,12] overlap");
  // Two names for the same bytes.
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                    Floats({1})),
              "overlap");
}

TEST_F(SafetensorsTest, NonContiguousData) {
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", Floats({1, 2})),
              "data is not contiguous: 4 unused bytes at offset 0 before tensor a");
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                    Floats({1, 2, 3})),
              "4 unused bytes at offset 4 before tensor b");
  ExpectError(Craft(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", Floats({1, 2})),
              "data is not contiguous: 4 bytes after the last tensor");
}

TEST_F(SafetensorsTest, WriterRefusesBadInput) {
  std::string path = Path("w.safetensors");
  auto dup = WriteSafetensors(path, {{"a", torch::ones({1})}, {"a", torch::ones({1})}});
  EXPECT_THAT(std::string(dup.message()), HasSubstr("tensor a given twice"));
  auto empty = WriteSafetensors(path, {{"", torch::ones({1})}});
  EXPECT_THAT(std::string(empty.message()), HasSubstr("empty name"));
  auto meta = WriteSafetensors(path, {{"__metadata__", torch::ones({1})}});
  EXPECT_THAT(std::string(meta.message()), HasSubstr("reserved"));
  auto dtype = WriteSafetensors(path, {{"b", torch::ones({1}, torch::kInt16)}});  // BOOL is written now
  EXPECT_THAT(std::string(dtype.message()), HasSubstr("has no safetensors encoding"));
  auto nodir = WriteSafetensors(Path("no/such/dir/x.safetensors"), {{"a", torch::ones({1})}});
  EXPECT_FALSE(nodir.ok());
  EXPECT_THAT(std::string(nodir.message()), HasSubstr("no/such/dir/x.safetensors"));
  EXPECT_FALSE(FileExists(path));
}

// ---- sharded directories ------------------------------------------------------------------

NamedTensors SomeTensors() {
  torch::manual_seed(1);
  NamedTensors t;
  for (int i = 0; i < 5; ++i) t.emplace_back("layer." + std::to_string(i) + ".weight", torch::randn({16, 16}));
  t.emplace_back("big", torch::randn({64, 64}));  // 16 KiB: larger than a shard
  t.emplace_back("tail", torch::randn({3}));
  return t;
}

void ExpectSameTensors(const SafetensorsCheckpoint& ck, const NamedTensors& want) {
  EXPECT_EQ(ck.names().size(), want.size());
  for (const auto& [name, t] : want) {
    auto got = ck.Read(name);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(torch::equal(*got, t)) << name;
  }
}

TEST_F(SafetensorsTest, ShardedRoundTripAndIndex) {
  NamedTensors t = SomeTensors();
  // 16x16 floats = 1 KiB; 2.5 KiB shards hold two of them; "big" gets its own shard.
  ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, t, 2560).ok());
  EXPECT_FALSE(FileExists(Path("model.safetensors")));
  ASSERT_TRUE(FileExists(Path("model.safetensors.index.json")));
  json idx = json::parse(*ReadFile(Path("model.safetensors.index.json")));
  int64_t total = 0;
  for (const auto& [n, x] : t) total += x.numel() * 4;
  EXPECT_EQ(idx["metadata"]["total_size"].get<int64_t>(), total);
  EXPECT_EQ(idx["weight_map"]["layer.0.weight"], "model-00001-of-00005.safetensors");
  EXPECT_EQ(idx["weight_map"]["layer.1.weight"], "model-00001-of-00005.safetensors");
  EXPECT_EQ(idx["weight_map"]["layer.4.weight"], "model-00003-of-00005.safetensors");
  EXPECT_EQ(idx["weight_map"]["big"], "model-00004-of-00005.safetensors");
  EXPECT_EQ(idx["weight_map"]["tail"], "model-00005-of-00005.safetensors");
  for (int i = 1; i <= 5; ++i)
    EXPECT_TRUE(FileExists(Path("model-0000" + std::to_string(i) + "-of-00005.safetensors")));

  auto ck = SafetensorsCheckpoint::Open(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_TRUE(ck->sharded());
  EXPECT_EQ(ck->files().size(), 5u);
  ExpectSameTensors(*ck, t);
  EXPECT_EQ(ck->FileOf("big")->path(), Path("model-00004-of-00005.safetensors"));
  EXPECT_EQ(ck->Find("nope"), nullptr);
}

TEST_F(SafetensorsTest, RewritingADirectoryReplacesTheOldLayout) {
  NamedTensors t = SomeTensors();
  ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, t, 2560).ok());  // 5 shards
  // Sharded -> single: the index and every shard go.
  ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, t, 0).ok());
  EXPECT_TRUE(FileExists(Path("model.safetensors")));
  EXPECT_FALSE(FileExists(Path("model.safetensors.index.json")));
  // Single -> fewer shards: the single file goes (it would win over the index).
  ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, t, 6000).ok());
  EXPECT_FALSE(FileExists(Path("model.safetensors")));
  EXPECT_EQ(ListDir(dir_), (std::set<std::string>{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                                  "model-00003-of-00003.safetensors", "model.safetensors.index.json"}));
  auto ck = SafetensorsCheckpoint::Open(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_EQ(ck->files().size(), 3u);
  ExpectSameTensors(*ck, t);
  // A file that merely looks unrelated is left alone.
  std::ofstream(Path("notes.txt")) << "keep";
  ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, t, 0).ok());
  EXPECT_TRUE(FileExists(Path("notes.txt")));
  EXPECT_FALSE(FileExists(Path("model-00001-of-00003.safetensors")));
}

TEST_F(SafetensorsTest, OneShardMeansASingleFile) {
  NamedTensors t = SomeTensors();
  ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, t, 1 << 30).ok());
  EXPECT_TRUE(FileExists(Path("model.safetensors")));
  EXPECT_FALSE(FileExists(Path("model.safetensors.index.json")));
  auto ck = SafetensorsCheckpoint::Open(dir_);
  ASSERT_TRUE(ck.ok()) << ck.status();
  EXPECT_FALSE(ck->sharded());
  ExpectSameTensors(*ck, t);
}

TEST_F(SafetensorsTest, DirectoryWithoutWeights) {
  auto ck = SafetensorsCheckpoint::Open(dir_);
  EXPECT_TRUE(absl::IsNotFound(ck.status()));
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("no model.safetensors or model.safetensors.index.json"));
  EXPECT_FALSE(SafetensorsCheckpoint::Exists(dir_));
}

class BadIndexTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    ASSERT_TRUE(WriteSafetensorsCheckpoint(dir_, {{"a", torch::ones({256})}, {"b", torch::zeros({256})}}, 1024).ok());
    index_ = Path("model.safetensors.index.json");
  }
  void WriteIndex(const json& weight_map) {
    std::ofstream(index_, std::ios::trunc) << json{{"metadata", json::object()}, {"weight_map", weight_map}}.dump();
  }
  void ExpectIndexError(const std::string& problem) {
    auto ck = SafetensorsCheckpoint::Open(dir_);
    ASSERT_FALSE(ck.ok());
    std::string msg(ck.status().message());
    EXPECT_THAT(msg, HasSubstr(index_));
    EXPECT_THAT(msg, HasSubstr(problem));
  }
  std::string index_;
};

TEST_F(BadIndexTest, NotJson) {
  std::ofstream(index_, std::ios::trunc) << "{\"weight_map\": ";
  ExpectIndexError("not valid JSON");
}

TEST_F(BadIndexTest, NoWeightMap) {
  std::ofstream(index_, std::ios::trunc) << "{\"metadata\": {}}";
  ExpectIndexError("no \"weight_map\" object");
}

TEST_F(BadIndexTest, ShardDoesNotExist) {
  WriteIndex({{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00009-of-00009.safetensors"}});
  ExpectIndexError("weight_map names shard model-00009-of-00009.safetensors, which does not exist");
}

TEST_F(BadIndexTest, TensorNotInItsShard) {
  WriteIndex({{"a", "model-00002-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}});
  ExpectIndexError("weight_map puts tensor a in model-00002-of-00002.safetensors, which does not hold it");
}

TEST_F(BadIndexTest, ShardHoldsUnlistedTensor) {
  // An index listing only "a" is consistent: "b"'s shard is then simply not part of it.
  WriteIndex({{"a", "model-00001-of-00002.safetensors"}});
  EXPECT_TRUE(SafetensorsCheckpoint::Open(dir_).ok());
  // But a listed shard holding a tensor the index does not name disagrees with it.
  ASSERT_TRUE(WriteSafetensors(Path("model-00001-of-00002.safetensors"),
                               {{"a", torch::ones({256})}, {"c", torch::ones({1})}}).ok());
  ExpectIndexError("holds tensor c, which weight_map does not list");
}

TEST_F(BadIndexTest, FileOutsideTheDirectory) {
  WriteIndex({{"a", "../model-00001-of-00002.safetensors"}});
  ExpectIndexError("outside the directory");
}

TEST_F(BadIndexTest, CorruptShardIsNamed) {
  std::string shard = Path("model-00002-of-00002.safetensors");
  std::ofstream(shard, std::ios::trunc).write("\xff\xff\xff\xff\xff\xff\xff\x00{}", 10);
  auto ck = SafetensorsCheckpoint::Open(dir_);
  ASSERT_FALSE(ck.ok());
  EXPECT_THAT(std::string(ck.status().message()), HasSubstr("safetensors: " + shard + ": header length"));
}

}  // namespace
}  // namespace augur
