// core/h5: the RAII helpers the token and teacher stores are built on: extendible N-D
// datasets, float16, strings, attributes, type conversion on read, and the error messages.
#include "core/h5.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "data_test_util.h"

namespace augur::h5 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_data::TempDir;

std::string Message(const absl::Status& st) { return std::string(st.message()); }

TEST(H5, ExtendibleTwoDimensionalAppendAndRead) {
  TempDir dir;
  const std::string path = dir / "a.h5";
  {
    auto f = File::Create(path);
    ASSERT_TRUE(f.ok()) << f.status();
    auto ds = Dataset::CreateExtendible(f->id(), "group/topk", DType::kI32, {3}, 4, 1);
    ASSERT_TRUE(ds.ok()) << ds.status();
    std::vector<int32_t> rows = {1, 2, 3, 4, 5, 6};
    ASSERT_TRUE(ds->Append(rows.data(), 2, DType::kI32).ok());
    std::vector<int64_t> more = {7, 8, 9};  // converted int64 -> int32 on write
    ASSERT_TRUE(ds->Append(more.data(), 1, DType::kI64).ok());
    EXPECT_EQ(ds->shape(), (std::vector<int64_t>{3, 3}));
    ASSERT_TRUE(f->Close().ok());
  }
  auto f = File::Open(path);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(Exists(f->id(), "group/topk"));
  EXPECT_FALSE(Exists(f->id(), "group/nope"));
  EXPECT_FALSE(Exists(f->id(), "nope/deeper"));
  auto ds = Dataset::Open(f->id(), "group/topk");
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(ds->dtype(), DType::kI32);
  EXPECT_EQ(ds->rows(), 3);
  EXPECT_EQ(ds->row_elements(), 3);
  auto all = ds->ReadAll<int64_t>();
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9));
  std::vector<double> mid(3);
  ASSERT_TRUE(ds->ReadRows(1, 1, DType::kF64, mid.data()).ok());
  EXPECT_THAT(mid, ElementsAre(4.0, 5.0, 6.0));
  auto bad = ds->ReadRows(2, 2, DType::kI32, mid.data());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(Message(bad), HasSubstr("a.h5:/group/topk: rows [2, 4) outside [0, 3)"));
}

TEST(H5, HalfFloatRoundTrip) {
  TempDir dir;
  auto f = File::Create(dir / "h.h5");
  ASSERT_TRUE(f.ok());
  // 1.0, -2.0, 0.5 and 65504 (largest half) as IEEE half bit patterns.
  std::vector<uint16_t> half = {0x3C00, 0xC000, 0x3800, 0x7BFF};
  auto ds = Dataset::CreateFixed(f->id(), "logp", DType::kF16, {4}, half.data());
  ASSERT_TRUE(ds.ok()) << ds.status();
  auto back = ds->ReadAll<float>();
  ASSERT_TRUE(back.ok());
  EXPECT_THAT(*back, ElementsAre(1.0f, -2.0f, 0.5f, 65504.0f));
  std::vector<uint16_t> raw(4);
  ASSERT_TRUE(ds->ReadRows(0, 4, DType::kF16, raw.data()).ok());
  EXPECT_EQ(raw, half);
}

TEST(H5, StringsAndAttributes) {
  TempDir dir;
  auto f = File::Create(dir / "s.h5");
  ASSERT_TRUE(f.ok());
  auto names = Dataset::CreateExtendible(f->id(), "names", DType::kString, {}, 8, 0);
  ASSERT_TRUE(names.ok());
  const char* batch[] = {"a.py", "dir/ü.py", ""};
  ASSERT_TRUE(names->Append(batch, 3, DType::kString).ok());
  auto got = names->ReadStrings(0, 3);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(*got, ElementsAre("a.py", "dir/ü.py", ""));

  const hid_t root = f->id();
  ASSERT_TRUE(WriteAttr(root, "count", int64_t{42}).ok());
  ASSERT_TRUE(WriteAttr(root, "count", int64_t{43}).ok());  // replaces
  ASSERT_TRUE(WriteAttr(root, "ratio", 0.25).ok());
  ASSERT_TRUE(WriteAttr(root, "label", std::string("héllo")).ok());
  EXPECT_TRUE(HasAttr(root, "count"));
  EXPECT_EQ(*ReadAttrInt(root, "count"), 43);
  EXPECT_DOUBLE_EQ(*ReadAttrDouble(root, "ratio"), 0.25);
  EXPECT_DOUBLE_EQ(*ReadAttrDouble(root, "count"), 43.0);
  EXPECT_EQ(*ReadAttrString(root, "label"), "héllo");
  auto missing = ReadAttrInt(root, "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(Message(missing.status()), HasSubstr("missing attribute 'nope'"));
  auto wrong = ReadAttrInt(root, "label");
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(Message(wrong.status()), HasSubstr("attribute 'label' is not an integer"));
  EXPECT_FALSE(ReadAttrString(root, "count").ok());
}

TEST(H5, OpenErrors) {
  TempDir dir;
  auto missing = File::Open(dir / "none.h5");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(Message(missing.status()), HasSubstr("none.h5: no such file"));
  testing_data::WriteText(dir / "text.h5", "not hdf5");
  auto text = File::Open(dir / "text.h5");
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(Message(text.status()), HasSubstr("text.h5: not an HDF5 file"));
  auto is_dir = File::Open(dir.path());
  ASSERT_FALSE(is_dir.ok());
  EXPECT_THAT(Message(is_dir.status()), HasSubstr("is a directory"));
  auto created = File::Create(dir / "x.h5");
  ASSERT_TRUE(created.ok());
  auto ds = Dataset::Open(created->id(), "tokens");
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(Message(ds.status()), HasSubstr("missing dataset 'tokens'"));
  auto nodir = File::Create(dir / "no/such/dir/x.h5");
  ASSERT_FALSE(nodir.ok());
  EXPECT_THAT(Message(nodir.status()), HasSubstr("cannot create file"));
}

}  // namespace
}  // namespace augur::h5
