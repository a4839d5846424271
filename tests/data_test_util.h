// Helpers for the data tests: temp dirs (POSIX: std::filesystem is unsafe in binaries
// linked with libtorch), file writing, and a small generated Python corpus with the
// things a code tokenizer must keep: tabs, blank lines, deep indentation, unicode.
#pragma once

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/fs.h"

namespace augur::testing_data {

class TempDir {
 public:
  explicit TempDir(const char* prefix = "augur_data_") : path_(MakeTempDir(prefix)) {}
  ~TempDir() { RemoveTree(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

inline void MakeDirs(const std::string& dir) {
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (!cur.empty()) ::mkdir(cur.c_str(), 0755);
    }
    if (i < dir.size()) cur += dir[i];
  }
}

inline void WriteText(const std::string& path, const std::string& text) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) MakeDirs(path.substr(0, slash));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One generated Python module: classes, methods, nested blocks, docstrings, comments,
// a tab-indented block, blank lines, unicode strings and numbers.
inline std::string PythonModule(int seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  const std::vector<std::string> names = {"value", "items", "result", "config", "buffer", "index",
                                          "total", "parser", "record", "stream", "offset", "weights"};
  auto name = [&] { return names[rng() % names.size()]; };
  std::string s = "# -*- coding: utf-8 -*-\n\"\"\"Module " + std::to_string(seed) + ": héllo wörld, 世界.\"\"\"\n\n";
  s += "import os\nimport sys\nfrom typing import List, Optional\n\n\n";
  for (int c = 0; c < 3; ++c) {
    s += "class Thing" + std::to_string(seed * 10 + c) + ":\n";
    s += "    \"\"\"A thing that holds " + name() + ".\"\"\"\n\n";
    s += "    def __init__(self, " + name() + ", " + name() + "=None):\n";
    s += "        self." + name() + " = " + std::to_string(rng() % 100000) + "\n";
    s += "        self." + name() + " = []\n\n";
    for (int m = 0; m < 3; ++m) {
      std::string n = name();
      s += "    def get_" + n + "(self, " + name() + ": int = " + std::to_string(rng() % 100) + ") -> Optional[int]:\n";
      s += "        for i in range(len(self." + n + ")):\n";
      s += "            if self." + n + "[i] is None:\n";
      s += "                return None  # nothing here\n";
      s += "            elif i % 2 == 0:\n";
      s += "                continue\n";
      s += "        return self." + n + "\n\n";
    }
    s += "\n";
  }
  s += "def legacy():\n\tif True:\n\t\treturn 'tabs → ok'\n\n\n";
  s += "if __name__ == \"__main__\":\n    print(\"ünïcödé 🐍\", sys.argv)\n";
  return s;
}

// `files` modules under dir/pkg<k>/mod<i>.py; returns their total size.
inline size_t WritePythonCorpus(const std::string& dir, int files) {
  size_t total = 0;
  for (int i = 0; i < files; ++i) {
    std::string text = PythonModule(i);
    WriteText(dir + "/pkg" + std::to_string(i % 3) + "/mod" + std::to_string(i) + ".py", text);
    total += text.size();
  }
  return total;
}

}  // namespace augur::testing_data
