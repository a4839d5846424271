// Internals of BpeTokenizer shared by its two source files: bpe_tokenizer.cc (encode, decode,
// regex splitting) and bpe_tokenizer_load.cc (tokenizer.json / GGUF loading, ToTokenizerJson).
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <absl/container/flat_hash_map.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/bpe_tokenizer.h"

namespace augur {
namespace bpe {

// How a Split step treats the regex matches (Hugging Face's SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A compiled PCRE2 pattern (UTF, UCP, MATCH_INVALID_UTF; JIT when available).
class Regex {
 public:
  static absl::StatusOr<std::shared_ptr<const Regex>> Compile(const std::string& pattern);
  ~Regex();
  // Appends the [begin, end) byte ranges of the non-empty matches in `s`, left to right.
  void FindAll(std::string_view s, std::vector<std::pair<size_t, size_t>>* out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  std::string pattern_;
  pcre2_code* code_ = nullptr;
};

// One pre-tokenizer step. ByteLevel(add_prefix_space) becomes kPrefixSpace followed by the
// GPT-2 Split (when use_regex); the byte-to-char mapping itself is implicit at the end.
struct PreStep {
  enum Kind { kSplit, kPrefixSpace } kind = kSplit;
  std::shared_ptr<const Regex> re;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
};

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// How special/added tokens are found in text: Hugging Face takes the leftmost match (longest at
// that position); llama.cpp splits on each token in turn, longest token first.
enum class SpecialMatch { kLeftmostLongest, kLongestFirst };

struct Merge {
  int32_t rank;
  int32_t id;  // the merged piece (>= vocab size for a GGUF piece that is not a token)
};

}  // namespace bpe

struct BpeTokenizer::Impl {
  std::string source;
  std::vector<std::string> id_to_token;  // as stored (byte-level characters)
  absl::flat_hash_map<std::string, int32_t> token_to_id;
  std::vector<std::string> id_bytes;     // what each id decodes to
  std::vector<bool> special;             // IsSpecial
  std::vector<bool> raw_decode;          // added/special tokens decode to their text
  std::vector<bool> in_model;            // in the BPE model's vocabulary (empty = all are)
  absl::flat_hash_map<std::string, int32_t> bytes_to_id;  // for ignore_merges
  // GGUF only: merge results that are not tokens (llama.cpp merges strings, then spells a
  // piece that is not a token as its byte tokens). Index = id - vocab_size.
  std::vector<std::string> extra_pieces;
  std::array<int32_t, 256> byte_id{};    // token of each single byte; -1 when none
  absl::flat_hash_map<uint64_t, bpe::Merge> merges;
  std::vector<std::pair<std::string, std::string>> merge_list;  // in rank order (for JSON)
  bool ignore_merges = false;
  bool nfc = false;
  std::vector<bpe::PreStep> pre_steps;
  // Hugging Face: pass 1 = non-normalized added tokens on the raw text, pass 2 = normalized ones
  // on the normalized fragments. GGUF: pass 1 only.
  std::vector<bpe::AddedToken> added_raw, added_normalized;
  bpe::SpecialMatch special_match = bpe::SpecialMatch::kLeftmostLongest;
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
  bool add_bos = false;
  nlohmann::json normalizer_json, pre_tokenizer_json, post_processor_json;
  std::string fingerprint;

  // Per-word BPE results; bounded (cleared when full), guarded for concurrent Encode calls.
  mutable std::mutex cache_mu;
  mutable absl::flat_hash_map<std::string, std::vector<int32_t>> cache;

  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token.size()); }
  void EncodeFragment(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;
  void BpeMerge(std::string_view word, std::vector<int32_t>* out) const;
  // Fills the derived tables (id_bytes, bytes_to_id, byte_id, special flags, fingerprint).
  absl::Status Finish();
};

namespace bpe {
// GPT-2's reversible byte <-> printable character table.
const std::array<uint32_t, 256>& ByteToChar();
// The byte a byte-level character stands for, or -1.
int CharToByte(uint32_t cp);
// Bytes a stored token text stands for: each mapped character becomes its byte, any other
// character is kept as its UTF-8 (Hugging Face's ByteLevel decoder does the same).
std::string TokenTextToBytes(std::string_view text);
std::string BytesToTokenText(std::string_view bytes);
// `s` with each invalid UTF-8 sequence replaced as described in bpe_tokenizer.h; returns
// false (and leaves *out alone) when `s` is already valid.
bool RepairUtf8(std::string_view s, std::string* out);
void AppendUtf8(uint32_t cp, std::string* out);
// NFC of valid UTF-8 `s` (ICU).
std::string Nfc(std::string_view s);
}  // namespace bpe

}  // namespace augur
