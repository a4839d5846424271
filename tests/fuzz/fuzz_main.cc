// One libFuzzer harness: the target named by AUGUR_FUZZ_TARGET (tests/fuzz/CMakeLists.txt).
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz_targets.h"

namespace {
const augur::fuzz::Target* target = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  target = augur::fuzz::FindTarget(AUGUR_FUZZ_TARGET);
  if (!target) {
    std::fprintf(stderr, "fuzz: unknown target %s\n", AUGUR_FUZZ_TARGET);
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  target->fn(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
