// The fuzz targets (tests/fuzz/fuzz_targets.h) on their seed corpora, which augur's readers must
// accept, and on every input a fuzzer found (tests/fuzz/regress/<target>/), each of which once
// crashed, overflowed, allocated without bound or printed a multi-line error; the tests below
// name the error each of them must now give. A target that trips on an input aborts this
// binary with the property it violated.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
#include "datasets/teacher_store.h"
#include "datasets/token_store.h"
#include "quantize/gguf_model_meta.h"
#include "quantize/gguf_reader.h"
#include "tests/fuzz/fuzz_targets.h"

namespace augur::fuzz {
namespace {

// Plain files of a directory, sorted (POSIX: std::filesystem is unsafe beside libtorch).
std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == ".." || name == "README.md") continue;
      out.push_back(dir + "/" + name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Bytes(const std::string& path) {
  auto s = ReadFile(path);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : std::string();
}

bool NeedsSmolLm2(const Target& t) { return std::string(t.name) == "bpe_encode"; }

TEST(FuzzSeeds, EveryTargetHasSeedsAndRunsThemClean) {
  for (const Target& t : Targets()) {
    const auto files = FilesIn(FuzzDir() + "/corpus/" + t.name);
    EXPECT_FALSE(files.empty()) << t.name << ": no seeds in tests/fuzz/corpus/" << t.name;
    if (NeedsSmolLm2(t) && !SmolLm2GgufPath().ok()) continue;
    for (const auto& f : files) t.fn(Bytes(f));
  }
}

TEST(FuzzSeeds, ReadersAcceptTheSeedsAugurWrote) {
  for (const auto& f : FilesIn(FuzzDir() + "/corpus/safetensors")) {
    auto st = SafetensorsFile::Open(f);
    EXPECT_TRUE(st.ok()) << st.status();
  }
  auto dtypes = SafetensorsFile::Open(FuzzDir() + "/corpus/safetensors/dtypes.safetensors");
  ASSERT_TRUE(dtypes.ok()) << dtypes.status();
  EXPECT_EQ((*dtypes)->tensors().size(), 11u);
  for (const auto& f : FilesIn(FuzzDir() + "/corpus/gguf")) {
    auto g = gguf::GgufFile::Open(f);
    EXPECT_TRUE(g.ok()) << g.status();
  }
  auto types = gguf::GgufFile::Open(FuzzDir() + "/corpus/gguf/types.gguf");
  ASSERT_TRUE(types.ok()) << types.status();
  EXPECT_EQ(types->tensors().size(), gguf::GgmlTypeTable().size());
  auto llama = gguf::GgufFile::Open(FuzzDir() + "/corpus/gguf/llama.gguf");
  ASSERT_TRUE(llama.ok()) << llama.status();
  auto vocab = gguf::ReadGgufBpeVocab(*llama);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto cfg = gguf::ReadGgufModelConfig(*llama, *FindArchitectureByGguf("llama"), vocab->tokens.size());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->num_hidden_layers, 1);
  EXPECT_TRUE(gguf::CheckGgufTensors(*llama, *cfg, *FindArchitectureByGguf("llama")).ok());
  for (const auto& f : FilesIn(FuzzDir() + "/corpus/tokenizer_json")) {
    auto t = Tokenizer::FromSerialized(Bytes(f), f);
    EXPECT_TRUE(t.ok()) << t.status();
  }
  auto store = TokenStore::Open(FuzzDir() + "/corpus/token_store/store.h5");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->num_docs(), 3);
  auto teacher = TeacherStore::Open(FuzzDir() + "/corpus/teacher_store/teacher.h5");
  ASSERT_TRUE(teacher.ok()) << teacher.status();
  EXPECT_EQ((*teacher)->num_sequences(), 2);
}

TEST(FuzzFindings, EveryCheckedInFindingRunsClean) {
  int n = 0;
  for (const Target& t : Targets()) {
    if (NeedsSmolLm2(t) && !SmolLm2GgufPath().ok()) continue;
    for (const auto& f : FilesIn(FuzzDir() + "/regress/" + t.name)) {
      SCOPED_TRACE(f);
      t.fn(Bytes(f));
      ++n;
    }
  }
  EXPECT_GT(n, 0);
}

// The status a reader gives on a checked-in finding.
absl::Status GgufError(const std::string& name) {
  const std::string path = FuzzDir() + "/regress/gguf/" + name;
  auto f = gguf::GgufFile::Open(path);
  if (!f.ok()) return f.status();
  auto vocab = gguf::ReadGgufBpeVocab(*f);
  if (!vocab.ok()) return vocab.status();
  auto cfg = gguf::ReadGgufModelConfig(*f, *FindArchitectureByGguf("llama"), vocab->tokens.size());
  if (!cfg.ok()) return cfg.status();
  return gguf::CheckGgufTensors(*f, *cfg, *FindArchitectureByGguf("llama"));
}

// A metadata key holding a newline printed its error on two lines; control characters in
// text from the file are now written as escapes.
TEST(FuzzFindings, GgufKeyWithNewlineGivesOneLine) {
  const absl::Status st = GgufError("key-with-newline.gguf");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("key 'general.\\nname' has unknown value type 99"), absl::string_view::npos) << st;
  EXPECT_EQ(st.message().find('\n'), absl::string_view::npos) << st;
}

// block_count = 2^31 was accepted (the bound was > 2^31, not >=).
TEST(FuzzFindings, GgufBlockCount2e31IsOutOfRange) {
  const absl::Status st = GgufError("block-count-2e31.gguf");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("metadata llama.block_count = 2147483648 is out of range"), absl::string_view::npos)
      << st;
}

// block_count = 2^30 made the tensor check build 9 * 2^30 names; it is now bounded by the
// tensors the file has.
TEST(FuzzFindings, GgufBlockCountBoundedByTheFilesTensors) {
  const absl::Status st = GgufError("block-count-2e30.gguf");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("metadata llama.block_count = 1073741824 needs at least 9663676418 tensors but the "
                              "file has 11"),
            absl::string_view::npos)
      << st;
}

// An added token with id 2^30 made the loader allocate 2^30 vocabulary slots (32 GiB) for a
// 5 KB file; ids are now bounded by the file's size.
TEST(FuzzFindings, TokenizerIdBoundedByFileSize) {
  const std::string path = FuzzDir() + "/regress/tokenizer_json/added-token-id-2e30.json";
  const std::string text = Bytes(path);
  auto tok = Tokenizer::FromSerialized(text, path);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find(absl::StrCat("needs an id (0 to ", text.size(), " for a file of ", text.size(),
                                                     " bytes) and a content")),
            absl::string_view::npos)
      << tok.status();
}

}  // namespace
}  // namespace augur::fuzz
