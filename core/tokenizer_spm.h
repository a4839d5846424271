// Includes the SentencePiece headers next to Abseil. SentencePiece 0.1.9x declares
// `namespace absl { using std::string_view; }`, which collides with Abseil's own
// absl::string_view class (Debian builds Abseil with ABSL_OPTION_USE_STD_STRING_VIEW 0).
// Renaming its namespace while the headers are read keeps the two apart; the library's
// symbols are unaffected because a using-alias never appears in mangled names (they
// name std::string_view).
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#define absl augur_sentencepiece_absl
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#undef absl
