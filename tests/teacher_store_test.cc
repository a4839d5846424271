// datasets/teacher_store: round trip, attributes, resume after a simulated kill (and after
// a kill between Finish's rename and its cleanup), and one-line errors for bad input.
#include "datasets/teacher_store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/fs.h"
#include "core/h5.h"
#include "datasets/token_store_writer.h"
#include "tests/data_test_util.h"

namespace augur {
namespace {

using testing_data::TempDir;

constexpr int64_t kK = 4, kVocab = 50;

TeacherStoreInfo Info() {
  TeacherStoreInfo info;
  info.target_fingerprint = "target-fp";
  info.tokenizer_fingerprint = "tok-fp";
  info.vocab_size = kVocab;
  info.top_k = kK;
  info.temperature = 1.0;
  info.mode = "greedy";
  info.generation = "max-new 8";
  info.source = "unit test";
  info.created_by = "teacher_store_test";
  return info;
}

TeacherSequence MakeSeq(int64_t prompt_index, int64_t len) {
  std::mt19937_64 rng(static_cast<uint64_t>(prompt_index) * 977 + 13);
  std::uniform_real_distribution<float> u(-12.f, -0.01f);
  TeacherSequence s;
  s.prompt_index = prompt_index;
  s.prompt_len = len / 2;
  for (int64_t i = 0; i < len; ++i) {
    s.tokens.push_back(static_cast<int32_t>(rng() % kVocab));
    for (int64_t k = 0; k < kK; ++k) {
      s.topk_ids.push_back(static_cast<int32_t>(rng() % kVocab));
      s.topk_logprobs.push_back(u(rng));
    }
    s.rest_logmass.push_back(u(rng));
  }
  return s;
}

// Values as written, float16 rounding allowed on the log-probs (half a unit in the last
// of 11 significant bits, relative).
void ExpectSame(const TeacherSequence& got, const TeacherSequence& want) {
  EXPECT_EQ(got.prompt_index, want.prompt_index);
  EXPECT_EQ(got.prompt_len, want.prompt_len);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.topk_ids, want.topk_ids);
  EXPECT_EQ(got.rest_logmass, want.rest_logmass);  // float32: exact
  ASSERT_EQ(got.topk_logprobs.size(), want.topk_logprobs.size());
  for (size_t i = 0; i < want.topk_logprobs.size(); ++i)
    EXPECT_NEAR(got.topk_logprobs[i], want.topk_logprobs[i], std::abs(want.topk_logprobs[i]) * 0x1p-11 + 1e-7) << i;
}

std::vector<int64_t> PromptIndices(const TeacherStore& s) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < s.num_sequences(); ++i) out.push_back(s.prompt_index(i));
  return out;
}

void CopyFile(const std::string& from, const std::string& to) {
  auto data = ReadFile(from);
  ASSERT_TRUE(data.ok());
  ASSERT_TRUE(WriteFileAtomic(to, *data).ok());
}

TEST(TeacherStore, RoundTrip) {
  TempDir tmp("augur_teacher_");
  const std::string path = tmp / "t.h5";
  auto w = TeacherStoreWriter::Create(path, Info());
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<TeacherSequence> seqs;
  const int64_t lens[] = {5, 1, 17, 9};
  for (int64_t i = 0; i < 4; ++i) {
    seqs.push_back(MakeSeq(10 + i, lens[i]));
    ASSERT_TRUE((*w)->Add(seqs.back()).ok());
  }
  ASSERT_TRUE((*w)->Flush().ok());
  seqs.push_back(MakeSeq(3, 6));
  ASSERT_TRUE((*w)->Add(seqs.back()).ok());
  EXPECT_FALSE(FileExists(path));  // nothing at the output path until Finish
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_TRUE(FileExists(path));
  EXPECT_FALSE(IsDirectory(TeacherPartsDir(path)));
  EXPECT_EQ(ListDir(tmp.path()), (std::set<std::string>{"t.h5"}));  // no temp files left

  auto s = TeacherStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  const TeacherStoreInfo& i = (*s)->info();
  EXPECT_EQ(i.format_version, kTeacherStoreVersion);
  EXPECT_EQ(i.target_fingerprint, "target-fp");
  EXPECT_EQ(i.tokenizer_fingerprint, "tok-fp");
  EXPECT_EQ(i.vocab_size, kVocab);
  EXPECT_EQ(i.top_k, kK);
  EXPECT_EQ(i.temperature, 1.0);
  EXPECT_EQ(i.mode, "greedy");
  EXPECT_EQ(i.generation, "max-new 8");
  EXPECT_EQ(i.source, "unit test");
  EXPECT_EQ(i.created_by, "teacher_store_test");
  EXPECT_EQ(i.num_sequences, 5);
  EXPECT_EQ(i.num_positions, 5 + 1 + 17 + 9 + 6);
  EXPECT_EQ((*s)->sequence_offset(2), 6);
  EXPECT_EQ((*s)->sequence_length(2), 17);
  for (int64_t k = 0; k < 5; ++k) {
    auto got = (*s)->Read(k);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectSame(*got, seqs[k]);
  }
  EXPECT_FALSE((*s)->Read(5).ok());
  // The layout other tools read: names, types and shapes.
  auto f = h5::File::Open(path);
  ASSERT_TRUE(f.ok());
  auto ids = h5::Dataset::Open(f->id(), "topk_ids");
  auto lp = h5::Dataset::Open(f->id(), "topk_logprobs");
  auto off = h5::Dataset::Open(f->id(), "seq_offsets");
  ASSERT_TRUE(ids.ok() && lp.ok() && off.ok());
  EXPECT_EQ(ids->shape(), (std::vector<int64_t>{38, kK}));
  EXPECT_EQ(lp->dtype(), h5::DType::kF16);
  EXPECT_EQ(*off->ReadAll<int64_t>(), (std::vector<int64_t>{0, 5, 6, 23, 32, 38}));
}

TEST(TeacherStore, EmptyStoreIsValid) {
  TempDir tmp("augur_teacher_");
  auto w = TeacherStoreWriter::Create(tmp / "e.h5", Info());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto s = TeacherStore::Open(tmp / "e.h5");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->num_sequences(), 0);
}

TEST(TeacherStore, ResumeAfterKill) {
  TempDir tmp("augur_teacher_");
  const std::string path = tmp / "t.h5";
  {
    auto w = TeacherStoreWriter::Create(path, Info());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add(MakeSeq(0, 4)).ok());
    ASSERT_TRUE((*w)->Add(MakeSeq(1, 7)).ok());
    ASSERT_TRUE((*w)->Flush().ok());
    ASSERT_TRUE((*w)->Add(MakeSeq(2, 3)).ok());
    ASSERT_TRUE((*w)->Flush().ok());
    ASSERT_TRUE((*w)->Add(MakeSeq(3, 3)).ok());  // never flushed: lost, as in a kill
    // A segment that was being written when the process died.
    WriteFileAtomic(TeacherPartsDir(path) + "/part-000002.h5.tmp.999", "half a file").IgnoreError();
  }  // destroyed without Finish
  EXPECT_FALSE(FileExists(path));
  EXPECT_EQ(ListDir(TeacherPartsDir(path)).size(), 3u);

  // Without --resume the leftovers are an error that says what to do.
  auto again = TeacherStoreWriter::Create(path, Info());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("--resume"), std::string::npos) << again.status();
  // A resume with other settings names the difference.
  TeacherStoreInfo other = Info();
  other.top_k = 8;
  auto mismatch = TeacherStoreWriter::Resume(path, other);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("top-k 4 but this run has 8"), std::string::npos) << mismatch.status();
  other = Info();
  other.target_fingerprint = "another-target";
  mismatch = TeacherStoreWriter::Resume(path, other);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("target fingerprint"), std::string::npos) << mismatch.status();

  auto w = TeacherStoreWriter::Resume(path, Info());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)->done_prompts(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_TRUE((*w)->is_done(1));
  EXPECT_FALSE((*w)->is_done(3));
  EXPECT_FALSE(FileExists(TeacherPartsDir(path) + "/part-000002.h5.tmp.999"));  // the torn segment is gone
  auto dup = (*w)->Add(MakeSeq(1, 7));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("already written"), std::string::npos) << dup;
  for (int64_t p : {3, 4}) ASSERT_TRUE((*w)->Add(MakeSeq(p, 5)).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_FALSE(IsDirectory(TeacherPartsDir(path)));

  auto s = TeacherStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(PromptIndices(**s), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  ExpectSame(*(*s)->Read(1), MakeSeq(1, 7));
  ExpectSame(*(*s)->Read(3), MakeSeq(3, 5));

  // A finished store can be extended with more prompts.
  auto more = TeacherStoreWriter::Resume(path, Info());
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ((*more)->done_prompts().size(), 5u);
  ASSERT_TRUE((*more)->Add(MakeSeq(9, 2)).ok());
  ASSERT_TRUE((*more)->Finish().ok());
  s = TeacherStore::Open(path);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(PromptIndices(**s), (std::vector<int64_t>{0, 1, 2, 3, 4, 9}));
}

TEST(TeacherStore, KillBetweenRenameAndCleanupWritesEachPromptOnce) {
  TempDir tmp("augur_teacher_");
  const std::string path = tmp / "t.h5", parts = TeacherPartsDir(path);
  {
    auto w = TeacherStoreWriter::Create(path, Info());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Add(MakeSeq(0, 4)).ok());
    ASSERT_TRUE((*w)->Flush().ok());
  }
  // Keep a copy of the segment, finish, then put it back: the state a kill right after
  // Finish's rename (before the parts were removed) leaves.
  CopyFile(parts + "/part-000000.h5", tmp / "saved.h5");
  auto w = TeacherStoreWriter::Resume(path, Info());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Finish().ok());
  ASSERT_TRUE(MakeDirs(parts).ok());
  CopyFile(tmp / "saved.h5", parts + "/part-000000.h5");

  auto r = TeacherStoreWriter::Resume(path, Info());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->done_prompts(), (std::vector<int64_t>{0}));
  ASSERT_TRUE((*r)->Add(MakeSeq(1, 3)).ok());
  ASSERT_TRUE((*r)->Finish().ok());
  auto s = TeacherStore::Open(path);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(PromptIndices(**s), (std::vector<int64_t>{0, 1}));
  EXPECT_FALSE(IsDirectory(parts));
}

TEST(TeacherStore, WriterRefusesBadSequences) {
  TempDir tmp("augur_teacher_");
  auto w = TeacherStoreWriter::Create(tmp / "t.h5", Info());
  ASSERT_TRUE(w.ok());
  TeacherSequence s = MakeSeq(0, 4);
  s.topk_ids.pop_back();
  EXPECT_FALSE((*w)->Add(s).ok());
  s = MakeSeq(0, 4);
  s.tokens[2] = kVocab;
  auto st = (*w)->Add(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token id 50 outside [0, 50)"), std::string::npos) << st;
  s = MakeSeq(0, 4);
  s.prompt_len = 5;
  EXPECT_FALSE((*w)->Add(s).ok());
  EXPECT_TRUE((*w)->done_prompts().empty());
  TeacherStoreInfo bad = Info();
  bad.top_k = kVocab + 1;
  EXPECT_FALSE(TeacherStoreWriter::Create(tmp / "u.h5", bad).ok());
}

TEST(TeacherStore, BadInputsGiveOneLineErrors) {
  TempDir tmp("augur_teacher_");
  auto one_line = [](const absl::Status& st) { return st.message().find('\n') == std::string::npos; };

  auto missing = TeacherStore::Open(tmp / "missing.h5");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_NE(missing.status().message().find("no such file"), std::string::npos) << missing.status();

  testing_data::WriteText(tmp / "text.h5", "hello, not hdf5\n");
  auto text = TeacherStore::Open(tmp / "text.h5");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("not an HDF5 file"), std::string::npos) << text.status();

  // A token store is an HDF5 file of another kind.
  TokenStoreInfo meta;
  meta.tokenizer_fingerprint = "tok-fp";
  meta.vocab_size = kVocab;
  auto tw = TokenStoreWriter::Create(tmp / "tokens.h5", meta);
  ASSERT_TRUE(tw.ok());
  ASSERT_TRUE((*tw)->Add({1, 2, 3}, Split::kTrain, "d").ok());
  ASSERT_TRUE((*tw)->Finish().ok());
  auto token_store = TeacherStore::Open(tmp / "tokens.h5");
  ASSERT_FALSE(token_store.ok());
  EXPECT_NE(token_store.status().message().find("is a 'augur-token-store' file, not a augur-teacher-store"),
            std::string::npos)
      << token_store.status();

  // A good store, then damaged copies of it.
  const std::string good = tmp / "good.h5";
  {
    auto w = TeacherStoreWriter::Create(good, Info());
    ASSERT_TRUE(w.ok());
    for (int64_t p = 0; p < 20; ++p) ASSERT_TRUE((*w)->Add(MakeSeq(p, 30)).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  auto bytes = ReadFile(good);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(WriteFileAtomic(tmp / "truncated.h5", bytes->substr(0, bytes->size() / 2)).ok());
  auto truncated = TeacherStore::Open(tmp / "truncated.h5");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("truncated.h5"), std::string::npos) << truncated.status();

  // Attributes that disagree with the datasets' shapes.
  CopyFile(good, tmp / "shapes.h5");
  {
    auto f = h5::File::Open(tmp / "shapes.h5", /*writable=*/true);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(h5::WriteAttr(f->id(), "num_positions", int64_t{7}).ok());
    ASSERT_TRUE(f->Close().ok());
  }
  auto shapes = TeacherStore::Open(tmp / "shapes.h5");
  ASSERT_FALSE(shapes.ok());
  EXPECT_NE(shapes.status().message().find("/tokens is int32 [600], expected int32 [7]"), std::string::npos)
      << shapes.status();

  CopyFile(good, tmp / "version.h5");
  {
    auto f = h5::File::Open(tmp / "version.h5", /*writable=*/true);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(h5::WriteAttr(f->id(), "format_version", int64_t{99}).ok());
    ASSERT_TRUE(f->Close().ok());
  }
  auto version = TeacherStore::Open(tmp / "version.h5");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.status().message().find("format version 99 is not supported"), std::string::npos)
      << version.status();

  for (const absl::Status& st : {missing.status(), text.status(), token_store.status(), truncated.status(),
                                 shapes.status(), version.status()})
    EXPECT_TRUE(one_line(st)) << st;
  EXPECT_TRUE(TeacherStore::Open(good).ok());
}

}  // namespace
}  // namespace augur
