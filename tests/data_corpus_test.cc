// datasets/corpus: input expansion (files, directories, JSONL), the default corpus's
// exclusions, the deterministic split, and one test per bad input.
#include "datasets/corpus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "data_test_util.h"

namespace augur {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing_data::TempDir;
using testing_data::WriteText;

struct Collected {
  std::vector<std::string> names, keys, texts;
};

absl::StatusOr<Collected> Collect(const CorpusOptions& options) {
  AUGUR_ASSIGN_OR_RETURN(Corpus corpus, Corpus::Open(options));
  Collected c;
  AUGUR_RETURN_IF_ERROR(corpus.ForEach([&](const Document& d) {
    c.names.push_back(d.name);
    c.keys.push_back(d.split_key);
    c.texts.emplace_back(d.text);
    return absl::OkStatus();
  }));
  return c;
}

std::string Message(const absl::Status& st) { return std::string(st.message()); }

TEST(Corpus, DirectoryIsSearchedRecursivelySortedAndFiltered) {
  TempDir dir;
  WriteText(dir / "b.py", "b");
  WriteText(dir / "a/z.py", "z");
  WriteText(dir / "a/notes.txt", "not python");
  WriteText(dir / "a/empty.py", "");  // empty documents are skipped
  WriteText(dir / ".hidden/h.py", "hidden");
  WriteText(dir / "__pycache__/c.py", "cache");
  CorpusOptions o;
  o.inputs = {dir.path()};
  auto c = Collect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->keys, ElementsAre("a/z.py", "b.py"));
  EXPECT_THAT(c->texts, ElementsAre("z", "b"));
  EXPECT_EQ(c->names[0], dir / "a/z.py");

  o.glob = "*.txt, *.py";
  c = Collect(o);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->keys, ElementsAre("a/notes.txt", "a/z.py", "b.py"));
}

TEST(Corpus, FileInputIsOneDocumentKeyedByName) {
  TempDir dir;
  WriteText(dir / "x/mod.py", "print(1)\n");
  CorpusOptions o;
  o.inputs = {dir / "x/mod.py"};
  auto corpus = Corpus::Open(o);
  ASSERT_TRUE(corpus.ok());
  EXPECT_EQ(corpus->total_bytes(), 9);
  auto c = Collect(o);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->keys, ElementsAre("mod.py"));
  EXPECT_THAT(c->texts, ElementsAre("print(1)\n"));
}

TEST(Corpus, JsonlLinesAreDocuments) {
  TempDir dir;
  WriteText(dir / "d.jsonl", "{\"text\": \"first\\n\\tdoc\"}\n\n{\"text\": \"second\", \"id\": 2}\n{\"text\": \"\"}\n");
  CorpusOptions o;
  o.inputs = {dir / "d.jsonl"};
  auto c = Collect(o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->texts, ElementsAre("first\n\tdoc", "second"));
  EXPECT_THAT(c->keys, ElementsAre("d.jsonl:1", "d.jsonl:3"));
  EXPECT_EQ(c->names[1], dir / "d.jsonl:3");

  WriteText(dir / "p.jsonl", "{\"prompt\": \"abc\"}\n");
  o.inputs = {dir / "p.jsonl"};
  o.jsonl_field = "prompt";
  c = Collect(o);
  ASSERT_TRUE(c.ok());
  EXPECT_THAT(c->texts, ElementsAre("abc"));
}

TEST(Corpus, MissingInput) {
  TempDir dir;
  CorpusOptions o;
  o.inputs = {dir / "nope"};
  auto c = Corpus::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(Message(c.status()), "corpus: " + (dir / "nope") + ": no such file or directory");
}

TEST(Corpus, NoInputs) {
  auto c = Corpus::Open(CorpusOptions{});
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()), HasSubstr("no inputs"));
}

TEST(Corpus, DirectoryWithoutMatchingFiles) {
  TempDir dir;
  WriteText(dir / "readme.md", "# hi");
  CorpusOptions o;
  o.inputs = {dir.path()};
  auto c = Corpus::Open(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()), HasSubstr(dir.path() + ": no files matching '*.py'"));
}

TEST(Corpus, UnreadableFile) {
  TempDir dir;
  WriteText(dir / "gone.py", "x = 1\n");
  CorpusOptions o;
  o.inputs = {dir.path()};
  auto corpus = Corpus::Open(o);
  ASSERT_TRUE(corpus.ok());
  ::remove((dir / "gone.py").c_str());  // vanished between listing and reading
  absl::Status st = corpus->ForEach([](const Document&) { return absl::OkStatus(); });
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st), HasSubstr(dir / "gone.py"));
  EXPECT_THAT(Message(st), HasSubstr("cannot read"));
}

TEST(Corpus, UnreadableFileByPermission) {
  if (::geteuid() == 0) GTEST_SKIP() << "running as root: file permissions do not stop reads";
  TempDir dir;
  WriteText(dir / "secret.py", "x = 1\n");
  ::chmod((dir / "secret.py").c_str(), 0);
  CorpusOptions o;
  o.inputs = {dir / "secret.py"};
  auto c = Collect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()), HasSubstr("secret.py: cannot read"));
}

TEST(Corpus, JsonlLineWithoutField) {
  TempDir dir;
  WriteText(dir / "d.jsonl", "{\"text\": \"ok\"}\n{\"content\": \"no text\"}\n");
  CorpusOptions o;
  o.inputs = {dir / "d.jsonl"};
  auto c = Collect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(Message(c.status()),
            "corpus: " + (dir / "d.jsonl") + ":2: no \"text\" field (choose it with --jsonl-field)");
}

TEST(Corpus, JsonlInvalidJson) {
  TempDir dir;
  WriteText(dir / "d.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"broken\n");
  CorpusOptions o;
  o.inputs = {dir / "d.jsonl"};
  auto c = Collect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(Message(c.status()), "corpus: " + (dir / "d.jsonl") + ":3: invalid JSON");
}

TEST(Corpus, JsonlFieldNotAString) {
  TempDir dir;
  WriteText(dir / "d.jsonl", "{\"text\": 42}\n");
  CorpusOptions o;
  o.inputs = {dir / "d.jsonl"};
  auto c = Collect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Message(c.status()), HasSubstr("d.jsonl:1: field \"text\" is not a string"));
}

TEST(Corpus, DefaultCorpusExcludesTestsAndSitePackages) {
  TempDir dir;
  for (const char* rel : {"os.py", "json/decoder.py", "test/test_os.py", "lib2to3/tests/t.py",
                          "idlelib/idle_test/t.py", "idlelib/run.py", "site-packages/pkg/m.py",
                          "unittest/test/x.py", "__pycache__/os.cpython.py", "json/README"}) {
    WriteText(dir / rel, std::string("# ") + rel + "\n");
  }
  ::setenv("AUGUR_STDLIB_DIR", dir.path().c_str(), 1);
  auto o = DefaultCorpusOptions();
  ::unsetenv("AUGUR_STDLIB_DIR");
  ASSERT_TRUE(o.ok()) << o.status();
  auto corpus = Corpus::Open(*o);
  ASSERT_TRUE(corpus.ok());
  std::vector<std::string> keys;
  for (const auto& f : corpus->files()) keys.push_back(f.split_key);
  EXPECT_THAT(keys, ElementsAre("idlelib/run.py", "json/decoder.py", "os.py"));
  ASSERT_EQ(corpus->sources().size(), 1u);
  EXPECT_THAT(corpus->sources()[0], HasSubstr("python-stdlib:" + dir.path() + " (3 files)"));
}

TEST(Corpus, DefaultCorpusOverrideMustExist) {
  ::setenv("AUGUR_STDLIB_DIR", "/nonexistent/augur/stdlib", 1);
  auto o = DefaultCorpusOptions();
  ::unsetenv("AUGUR_STDLIB_DIR");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(Message(o.status()), HasSubstr("AUGUR_STDLIB_DIR=/nonexistent/augur/stdlib: not a directory"));
}

TEST(Corpus, DefaultCorpusFromPython) {
  auto dir = StdlibDir();
  if (!dir.ok()) GTEST_SKIP() << "no python3 here: " << dir.status();
  auto o = DefaultCorpusOptions();
  ASSERT_TRUE(o.ok());
  auto corpus = Corpus::Open(*o);
  ASSERT_TRUE(corpus.ok()) << corpus.status();
  EXPECT_GT(corpus->files().size(), 100u);
  for (const auto& f : corpus->files()) {
    const std::string path = "/" + f.split_key;
    for (const char* dir : {"/test/", "/tests/", "/idle_test/", "/site-packages/", "/__pycache__/"})
      EXPECT_EQ(path.find(dir), std::string::npos) << f.split_key;
  }
}

TEST(Split, DeterministicMonotoneAndProportional) {
  int valid = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string key = "pkg/mod" + std::to_string(i) + ".py";
    bool v = IsValidSplit(key, 0.25);
    EXPECT_EQ(v, IsValidSplit(key, 0.25));
    if (v) {
      ++valid;
      EXPECT_TRUE(IsValidSplit(key, 0.5));  // a larger fraction only adds documents
    }
    EXPECT_FALSE(IsValidSplit(key, 0.0));
    EXPECT_TRUE(IsValidSplit(key, 1.0));
  }
  EXPECT_NEAR(valid / 4000.0, 0.25, 0.03);
}

}  // namespace
}  // namespace augur
