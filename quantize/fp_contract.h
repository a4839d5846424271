// AUGUR_NO_FP_CONTRACT: a function attribute that keeps `a * b + c` as two float32 roundings
// (no fused multiply-add), for code that must round exactly as ggml's reference C and the gguf
// package's numpy do. CMake also builds such files with -ffp-contract=off; this keeps a direct
// compiler call honest. Include it only from .cc files (clang's pragma applies file-wide).
#pragma once

#if defined(__clang__)
#pragma clang fp contract(off)
#define AUGUR_NO_FP_CONTRACT
#elif defined(__GNUC__)
#define AUGUR_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define AUGUR_NO_FP_CONTRACT
#endif
