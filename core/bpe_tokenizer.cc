// BpeTokenizer: encode (special tokens, pre-tokenizer splits, byte-level BPE merges), decode,
// and the byte/UTF-8 helpers. Loading lives in bpe_tokenizer_load.cc.
#include "core/bpe_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/bytestream.h>

#include <algorithm>
#include <cstring>
#include <queue>

#include "core/bpe_tokenizer_impl.h"

namespace augur {
namespace bpe {

const std::array<uint32_t, 256>& ByteToChar() {
  // Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, DEL,
  // NBSP, soft hyphen) take the code points from U+0100 upward in byte order, so every byte
  // has a visible character and the mapping is reversible.
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      t[b] = printable ? static_cast<uint32_t>(b) : next++;
    }
    return t;
  }();
  return table;
}

int CharToByte(uint32_t cp) {
  static const std::vector<int16_t> inverse = [] {
    std::vector<int16_t> v(324, -1);
    for (int b = 0; b < 256; ++b) v[ByteToChar()[b]] = static_cast<int16_t>(b);
    return v;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Decodes one code point at s[*i] the way llama.cpp's unicode_cpt_from_utf8 does (lead byte
// decides the length, continuation bytes must be 10xxxxxx, no overlong/surrogate check);
// returns -1 (and moves one byte) where it throws.
int64_t DecodeLenient(std::string_view s, size_t* i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(*i);
  const auto cont = [&](size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  int n;
  uint32_t cp;
  if (c < 0x80) { *i += 1; return c; }
  if ((c & 0x40) == 0) { *i += 1; return -1; }
  if ((c & 0x20) == 0) { n = 2; cp = c & 0x1F; }
  else if ((c & 0x10) == 0) { n = 3; cp = c & 0x0F; }
  else if ((c & 0x08) == 0) { n = 4; cp = c & 0x07; }
  else { *i += 1; return -1; }
  for (int k = 1; k < n; ++k) {
    if (!cont(*i + k)) { *i += 1; return -1; }
    cp = (cp << 6) | (b(*i + k) & 0x3F);
  }
  *i += n;
  return cp;
}

}  // namespace

bool RepairUtf8(std::string_view s, std::string* out) {
  size_t i = 0;
  // Fast path: find the first byte where the canonical decoding disagrees with llama.cpp's.
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) { ++i; continue; }
    const size_t start = i;
    const int64_t cp = DecodeLenient(s, &i);
    const size_t n = i - start;
    // Surrogates pass through as their three bytes, as in llama.cpp (PCRE2 then never matches
    // them, so each stays a piece of its own, again as in llama.cpp).
    const bool canonical = cp >= 0 && cp <= 0x10FFFF &&
                           n == (cp < 0x80 ? 1u : cp < 0x800 ? 2u : cp < 0x10000 ? 3u : 4u);
    if (!canonical) { i = start; break; }
  }
  if (i == s.size()) return false;
  out->assign(s.data(), i);
  while (i < s.size()) {
    int64_t cp = DecodeLenient(s, &i);
    if (cp < 0 || cp > 0x10FFFF) cp = 0xFFFD;
    AppendUtf8(static_cast<uint32_t>(cp), out);  // an overlong form comes out canonical
  }
  return true;
}

std::string TokenTextToBytes(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    const int64_t cp = DecodeLenient(text, &i);
    const int b = cp >= 0 ? CharToByte(static_cast<uint32_t>(cp)) : -1;
    if (b >= 0) {
      out.push_back(static_cast<char>(b));
    } else {
      out.append(text.data() + start, i - start);
    }
  }
  return out;
}

std::string BytesToTokenText(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) AppendUtf8(ByteToChar()[c], &out);
  return out;
}

std::string Nfc(std::string_view s) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return std::string(s);
  const icu::StringPiece piece(s.data(), static_cast<int32_t>(s.size()));
  if (nfc->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(s);
  std::string out;
  icu::StringByteSink<std::string> sink(&out);
  status = U_ZERO_ERROR;
  nfc->normalizeUTF8(0, piece, sink, nullptr, status);
  return U_SUCCESS(status) ? out : std::string(s);
}

// ---- Regex ----

absl::StatusOr<std::shared_ptr<const Regex>> Regex::Compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                                   &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return absl::InvalidArgumentError(absl::StrCat("regex /", pattern, "/ at offset ", offset,
                                                   ": ", reinterpret_cast<const char*>(msg)));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
  std::shared_ptr<Regex> re(new Regex());
  re->pattern_ = pattern;
  re->code_ = code;
  return std::shared_ptr<const Regex>(std::move(re));
}

Regex::~Regex() { pcre2_code_free(code_); }

namespace {

// One match data block and a JIT stack per thread (group 0 is all we read).
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  pcre2_match_context* ctx = pcre2_match_context_create(nullptr);
  ThreadMatchState() {
    if (stack && ctx) pcre2_jit_stack_assign(ctx, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(ctx);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

size_t Utf8Len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

}  // namespace

void Regex::FindAll(std::string_view s, std::vector<std::pair<size_t, size_t>>* out) const {
  thread_local ThreadMatchState st;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t pos = 0;
  while (pos < s.size()) {
    int rc = pcre2_match(code_, subject, s.size(), pos, 0, st.data, st.ctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_JIT, st.data, st.ctx);
    }
    if (rc < 0) return;  // no (more) matches; errors (match limits) end the search too
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out->emplace_back(b, e);
      pos = e;
    } else {
      pos = b + Utf8Len(static_cast<unsigned char>(s[b]));
    }
  }
}

namespace {

// Splits each piece by `step`, appending the results to `next`.
void ApplySplit(const PreStep& step, const std::vector<std::string_view>& pieces,
                std::vector<std::string_view>* next,
                std::vector<std::pair<size_t, size_t>>* matches) {
  for (std::string_view p : pieces) {
    matches->clear();
    step.re->FindAll(p, matches);
    // Segments (begin, end, is_match) covering p.
    struct Seg { size_t b, e; bool m; };
    std::vector<Seg> segs;
    size_t at = 0;
    for (auto [b, e] : *matches) {
      if (b > at) segs.push_back({at, b, step.invert});
      segs.push_back({b, e, !step.invert});
      at = e;
    }
    if (at < p.size()) segs.push_back({at, p.size(), step.invert});
    std::vector<Seg> outs;
    switch (step.behavior) {
      case SplitBehavior::kRemoved:
        for (const Seg& s : segs) if (!s.m) outs.push_back(s);
        break;
      case SplitBehavior::kIsolated:
        outs = segs;
        break;
      case SplitBehavior::kContiguous:
        for (const Seg& s : segs) {
          if (s.m && !outs.empty() && outs.back().m) outs.back().e = s.e;
          else outs.push_back(s);
        }
        break;
      case SplitBehavior::kMergedWithPrevious: {
        bool prev_match = false;
        for (const Seg& s : segs) {
          if (s.m && !prev_match && !outs.empty()) outs.back().e = s.e;
          else outs.push_back({s.b, s.e, false});
          prev_match = s.m;
        }
        break;
      }
      case SplitBehavior::kMergedWithNext: {
        bool prev_match = false;
        for (size_t k = segs.size(); k-- > 0;) {
          const Seg& s = segs[k];
          if (s.m && !prev_match && !outs.empty()) outs.back().b = s.b;
          else outs.push_back({s.b, s.e, false});
          prev_match = s.m;
        }
        std::reverse(outs.begin(), outs.end());
        break;
      }
    }
    for (const Seg& s : outs) {
      if (s.e > s.b) next->push_back(p.substr(s.b, s.e - s.b));
    }
  }
}

struct Piece {
  bool is_token;
  int32_t id;
  std::string_view text;
};

bool IsWordChar(std::string_view s, bool last) {
  // Rust regex \w on the first/last character; PCRE2's UCP \w is the same up to marks.
  static const auto re = Regex::Compile("\\w").value();
  if (s.empty()) return false;
  size_t b = 0;
  if (last) {
    b = s.size() - 1;
    while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  }
  std::vector<std::pair<size_t, size_t>> m;
  const std::string_view ch = s.substr(b, last ? s.size() - b
                                               : Utf8Len(static_cast<unsigned char>(s[0])));
  re->FindAll(ch, &m);
  return !m.empty();
}

size_t SpaceRunLeft(std::string_view s) {  // bytes of whitespace ending s
  static const auto re = Regex::Compile("\\s+$").value();
  std::vector<std::pair<size_t, size_t>> m;
  re->FindAll(s, &m);
  return m.empty() ? 0 : m.back().second - m.back().first;
}

size_t SpaceRunRight(std::string_view s) {  // bytes of whitespace starting s
  static const auto re = Regex::Compile("^\\s+").value();
  std::vector<std::pair<size_t, size_t>> m;
  re->FindAll(s, &m);
  return m.empty() ? 0 : m[0].second;
}

// Splits the text pieces of `in` on `tokens`; token pieces pass through.
void SplitAdded(const std::vector<AddedToken>& tokens, SpecialMatch mode,
                const std::vector<Piece>& in, std::vector<Piece>* out) {
  if (tokens.empty()) {
    *out = in;
    return;
  }
  if (mode == SpecialMatch::kLongestFirst) {
    // llama.cpp: for each token (longest first), split every text piece on all its
    // occurrences; lstrip/rstrip drop the whitespace next to it.
    std::vector<Piece> cur = in, next;
    for (const AddedToken& t : tokens) {
      next.clear();
      for (const Piece& p : cur) {
        if (p.is_token) { next.push_back(p); continue; }
        std::string_view rest = p.text;
        size_t f;
        while ((f = rest.find(t.content)) != std::string_view::npos) {
          std::string_view left = rest.substr(0, f);
          if (t.lstrip) while (!left.empty() && std::isspace(static_cast<unsigned char>(left.back()))) left.remove_suffix(1);
          if (!left.empty()) next.push_back({false, -1, left});
          next.push_back({true, t.id, {}});
          rest = rest.substr(f + t.content.size());
          if (t.rstrip) while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
        }
        if (!rest.empty()) next.push_back({false, -1, rest});
      }
      cur.swap(next);
    }
    *out = std::move(cur);
    return;
  }
  // Hugging Face: leftmost match, longest at that position (tokens sorted longest first).
  std::array<bool, 256> first{};
  for (const AddedToken& t : tokens) first[static_cast<unsigned char>(t.content[0])] = true;
  for (const Piece& p : in) {
    if (p.is_token) { out->push_back(p); continue; }
    const std::string_view s = p.text;
    size_t last = 0, pos = 0;
    while (pos < s.size()) {
      if (!first[static_cast<unsigned char>(s[pos])]) { ++pos; continue; }
      const AddedToken* hit = nullptr;
      for (const AddedToken& t : tokens) {
        if (s.compare(pos, t.content.size(), t.content) == 0) { hit = &t; break; }
      }
      if (hit == nullptr) { ++pos; continue; }
      size_t b = pos, e = pos + hit->content.size();
      if (hit->single_word &&
          ((b > 0 && IsWordChar(s.substr(0, b), true)) ||
           (e < s.size() && IsWordChar(s.substr(e), false)))) {
        pos = e;  // the matcher resumes after the rejected match, as Hugging Face's does
        continue;
      }
      if (hit->lstrip) b = std::max(last, b - SpaceRunLeft(s.substr(0, b)));
      if (hit->rstrip) e += SpaceRunRight(s.substr(e));
      if (b > last) out->push_back({false, -1, s.substr(last, b - last)});
      out->push_back({true, hit->id, {}});
      last = pos = e;
    }
    if (last < s.size()) out->push_back({false, -1, s.substr(last)});
  }
}

}  // namespace
}  // namespace bpe

// ---- BPE ----

void BpeTokenizer::Impl::BpeMerge(std::string_view word, std::vector<int32_t>* out) const {
  struct Sym { int32_t id, prev, next; };
  std::vector<Sym> syms;
  syms.reserve(word.size());
  for (unsigned char c : word) {
    const int32_t id = byte_id[c];
    if (id < 0) continue;  // no token for this byte (Hugging Face drops it)
    const int32_t k = static_cast<int32_t>(syms.size());
    syms.push_back({id, k - 1, k + 1});
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  struct Cand { int32_t rank, left, right, id; };
  const auto worse = [](const Cand& a, const Cand& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  std::vector<Cand> heap;
  const auto consider = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(syms[l].id)) << 32) |
                         static_cast<uint32_t>(syms[r].id);
    const auto it = merges.find(key);
    if (it == merges.end()) return;
    heap.push_back({it->second.rank, l, r, it->second.id});
    std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int32_t k = 0; k + 1 < static_cast<int32_t>(syms.size()); ++k) consider(k, k + 1);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    const Cand c = heap.back();
    heap.pop_back();
    Sym& l = syms[c.left];
    // Stale when either side has merged since: the left symbol no longer ends at `right`, or
    // the pair no longer maps to this merge.
    if (l.id < 0 || l.next != c.right || syms[c.right].id < 0) continue;
    const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l.id)) << 32) |
                         static_cast<uint32_t>(syms[c.right].id);
    const auto it = merges.find(key);
    if (it == merges.end() || it->second.id != c.id) continue;
    Sym& r = syms[c.right];
    l.id = c.id;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    r.id = -1;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
  for (int32_t k = 0; k >= 0; k = syms[k].next) {
    const int32_t id = syms[k].id;
    if (id < vocab_size()) {
      out->push_back(id);
    } else {  // a GGUF piece that is not a token: llama.cpp spells it as byte tokens
      for (unsigned char c : extra_pieces[id - vocab_size()]) {
        if (byte_id[c] >= 0 && byte_id[c] < vocab_size()) out->push_back(byte_id[c]);
      }
    }
  }
}

void BpeTokenizer::Impl::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (ignore_merges) {
    const auto it = bytes_to_id.find(absl::string_view(word.data(), word.size()));
    if (it != bytes_to_id.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    BpeMerge(word, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    const auto it = cache.find(absl::string_view(word.data(), word.size()));
    if (it != cache.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t start = out->size();
  BpeMerge(word, out);
  if (word.size() > 256) return;  // long words are rare; keep the cache for the common ones
  std::lock_guard<std::mutex> lock(cache_mu);
  if (cache.size() >= 200000) cache.clear();
  cache.emplace(std::string(word), std::vector<int32_t>(out->begin() + start, out->end()));
}

void BpeTokenizer::Impl::EncodeFragment(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<std::string_view> pieces{text}, next;
  std::vector<std::pair<size_t, size_t>> matches;
  std::vector<std::string> prefixed;  // storage for pieces given a leading space
  for (const bpe::PreStep& step : pre_steps) {
    if (step.kind == bpe::PreStep::kPrefixSpace) {
      size_t need = 0;
      for (std::string_view p : pieces) need += !p.empty() && p[0] != ' ';
      prefixed.reserve(prefixed.size() + need);  // no reallocation: views stay valid
      for (std::string_view& p : pieces) {
        if (!p.empty() && p[0] != ' ') {
          prefixed.push_back(absl::StrCat(" ", absl::string_view(p.data(), p.size())));
          p = prefixed.back();
        }
      }
      continue;
    }
    next.clear();
    bpe::ApplySplit(step, pieces, &next, &matches);
    pieces.swap(next);
  }
  for (std::string_view w : pieces) EncodeWord(w, out);
}

// ---- public API ----

std::vector<int32_t> BpeTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  if (!impl_ || text.empty()) return ids;
  const Impl& m = *impl_;
  std::vector<bpe::Piece> pass1;
  bpe::SplitAdded(m.added_raw, m.special_match, {{false, -1, text}}, &pass1);
  std::string repaired, normalized;
  for (const bpe::Piece& p : pass1) {
    if (p.is_token) {
      ids.push_back(p.id);
      continue;
    }
    std::string_view frag = p.text;
    if (bpe::RepairUtf8(frag, &repaired)) frag = repaired;
    if (m.nfc) {
      normalized = bpe::Nfc(frag);
      frag = normalized;
    }
    if (m.added_normalized.empty()) {
      m.EncodeFragment(frag, &ids);
      continue;
    }
    std::vector<bpe::Piece> pass2;
    bpe::SplitAdded(m.added_normalized, m.special_match, {{false, -1, frag}}, &pass2);
    for (const bpe::Piece& q : pass2) {
      if (q.is_token) ids.push_back(q.id);
      else m.EncodeFragment(q.text, &ids);
    }
  }
  return ids;
}

absl::StatusOr<std::string> BpeTokenizer::Decode(const int32_t* ids, size_t n) const {
  if (!impl_) return absl::FailedPreconditionError("bpe tokenizer: not loaded");
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= impl_->vocab_size()) {
      return absl::OutOfRangeError(absl::StrCat("bpe tokenizer: ", impl_->source, ": token id ",
                                                ids[i], " at position ", i,
                                                " is outside the vocabulary [0, ",
                                                impl_->vocab_size(), ")"));
    }
    out += impl_->id_bytes[ids[i]];
  }
  return out;
}

int32_t BpeTokenizer::vocab_size() const { return impl_ ? impl_->vocab_size() : 0; }
int32_t BpeTokenizer::bos_id() const { return impl_ ? impl_->bos_id : -1; }
int32_t BpeTokenizer::eos_id() const { return impl_ ? impl_->eos_id : -1; }
int32_t BpeTokenizer::pad_id() const { return impl_ ? impl_->pad_id : -1; }
int32_t BpeTokenizer::unk_id() const { return impl_ ? impl_->unk_id : -1; }
bool BpeTokenizer::add_bos() const { return impl_ && impl_->add_bos; }

std::string BpeTokenizer::IdToToken(int32_t id) const {
  if (!impl_ || id < 0 || id >= impl_->vocab_size()) return "";
  return impl_->id_to_token[id];
}

int32_t BpeTokenizer::TokenToId(const std::string& token) const {
  if (!impl_) return -1;
  const auto it = impl_->token_to_id.find(token);
  return it == impl_->token_to_id.end() ? -1 : it->second;
}

bool BpeTokenizer::IsSpecial(int32_t id) const {
  return impl_ && id >= 0 && id < impl_->vocab_size() && impl_->special[id];
}

const std::string& BpeTokenizer::fingerprint() const {
  static const std::string empty;
  return impl_ ? impl_->fingerprint : empty;
}

const std::string& BpeTokenizer::source() const {
  static const std::string empty;
  return impl_ ? impl_->source : empty;
}

}  // namespace augur
