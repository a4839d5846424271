// BpeTokenizer from a Hugging Face tokenizer.json or a GGUF vocabulary, and back to
// tokenizer.json. Every refusal is one line: "bpe tokenizer: <source>: <problem>".
#include <algorithm>
#include <set>

#include "core/bpe_tokenizer.h"
#include "core/bpe_tokenizer_impl.h"
#include "core/fs.h"

namespace augur {
namespace {

using nlohmann::json;
using bpe::PreStep;
using bpe::SplitBehavior;

// Hugging Face ByteLevel's own split (GPT-2's pattern, with a final \s+).
constexpr char kGpt2HfPattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// llama.cpp's pre-tokenizers (src/llama-vocab.cpp, llm_tokenizer_bpe): each regex in turn
// splits every piece, matches and the text between them both kept (Hugging Face's Isolated).
constexpr char kGpt2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
constexpr char kLlama3[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr char kQwen2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct GgufPre {
  std::vector<std::string> names;  // tokenizer.ggml.pre values
  std::vector<std::string> regexes;
  bool ignore_merges = false;
};

const std::vector<GgufPre>& GgufPreTable() {
  static const std::vector<GgufPre> table = {
      {{"default"},
       {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2, "\\p{N}+", "[0-9][0-9][0-9]"}},
      {{"gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jina-es", "jina-de"}, {kGpt2}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"}, {kLlama3}, true},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2"}, {kQwen2}},
      // SmolLM / StarCoder: every digit on its own, then GPT-2's split.
      {{"smollm", "starcoder", "refact", "codeshell", "exaone", "command-r"}, {"\\p{N}", kGpt2}},
      {{"deepseek-coder"},
       {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
        "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "\\p{N}"}},
  };
  return table;
}

// Token texts llama.cpp treats as control tokens whatever their GGUF type (its end-of-
// generation and fill-in-the-middle auto-detection).
const std::set<std::string>& GgufControlNames() {
  static const std::set<std::string> names = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
      "<|end_of_text|>", "<EOT>", "_<EOT>", "<|eom_id|>", "<|return|>", "<|call|>",
      "<end_of_utterance>", "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<PRE>",
      "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<SUF>", "<|fim_middle|>",
      "<fim-middle>", "<fim_middle>", "<MID>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
      "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"};
  return names;
}

absl::Status Err(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("bpe tokenizer: ", source, ": ", what));
}

std::string TypeOf(const json& j) {
  if (!j.is_object()) return "";
  const auto it = j.find("type");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

bool BoolOr(const json& j, const char* key, bool dflt) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : dflt;
}

// PCRE2 pattern matching the literal `s`.
std::string EscapeLiteral(const std::string& s) {
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u)) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

absl::Status AddSplit(const std::string& source, const std::string& pattern,
                      SplitBehavior behavior, bool invert, std::vector<PreStep>* steps) {
  auto re = bpe::Regex::Compile(pattern);
  if (!re.ok()) return Err(source, std::string(re.status().message()));
  PreStep st;
  st.kind = PreStep::kSplit;
  st.re = *std::move(re);
  st.behavior = behavior;
  st.invert = invert;
  steps->push_back(std::move(st));
  return absl::OkStatus();
}

// Appends the steps of one Hugging Face pre-tokenizer; *byte_level set when a ByteLevel was seen.
absl::Status ParsePre(const std::string& source, const json& j, std::vector<PreStep>* steps,
                      bool* byte_level) {
  const std::string type = TypeOf(j);
  if (*byte_level) {
    return Err(source, absl::StrCat("pre_tokenizer ", type,
                                    " after ByteLevel is not supported (ByteLevel must be last)"));
  }
  if (type == "Sequence") {
    const auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) return Err(source, "pre_tokenizer Sequence without a pretokenizers list");
    for (const json& p : *it) AUGUR_RETURN_IF_ERROR(ParsePre(source, p, steps, byte_level));
    return absl::OkStatus();
  }
  if (type == "ByteLevel") {
    if (BoolOr(j, "add_prefix_space", true)) {
      PreStep st;
      st.kind = PreStep::kPrefixSpace;
      steps->push_back(st);
    }
    if (BoolOr(j, "use_regex", true)) {
      AUGUR_RETURN_IF_ERROR(AddSplit(source, kGpt2HfPattern, SplitBehavior::kIsolated, false, steps));
    }
    *byte_level = true;
    return absl::OkStatus();
  }
  if (type == "Digits") {
    return AddSplit(source, BoolOr(j, "individual_digits", false) ? "\\p{N}" : "\\p{N}+",
                    SplitBehavior::kIsolated, false, steps);
  }
  if (type == "Split") {
    std::string pattern;
    const auto pat = j.find("pattern");
    if (pat != j.end() && pat->is_object() && pat->contains("Regex") && (*pat)["Regex"].is_string()) {
      pattern = (*pat)["Regex"].get<std::string>();
    } else if (pat != j.end() && pat->is_object() && pat->contains("String") &&
               (*pat)["String"].is_string()) {
      pattern = EscapeLiteral((*pat)["String"].get<std::string>());
    } else {
      return Err(source, "pre_tokenizer Split without a Regex or String pattern");
    }
    static const std::vector<std::pair<std::string, SplitBehavior>> kBehaviors = {
        {"Removed", SplitBehavior::kRemoved},
        {"Isolated", SplitBehavior::kIsolated},
        {"MergedWithPrevious", SplitBehavior::kMergedWithPrevious},
        {"MergedWithNext", SplitBehavior::kMergedWithNext},
        {"Contiguous", SplitBehavior::kContiguous}};
    const std::string b = j.value("behavior", std::string());
    const auto it = std::find_if(kBehaviors.begin(), kBehaviors.end(),
                                 [&](const auto& kv) { return kv.first == b; });
    if (it == kBehaviors.end()) return Err(source, absl::StrCat("pre_tokenizer Split behavior '", b, "' is not supported"));
    return AddSplit(source, pattern, it->second, BoolOr(j, "invert", false), steps);
  }
  return Err(source, absl::StrCat("pre_tokenizer '", type.empty() ? j.dump() : type,
                                  "' is not supported (ByteLevel, Split, Digits, Sequence)"));
}

absl::Status ParseNormalizer(const std::string& source, const json& j, bool* nfc) {
  if (j.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(j);
  if (type == "NFC") {
    *nfc = true;
    return absl::OkStatus();
  }
  if (type == "Sequence" && j.contains("normalizers") && j["normalizers"].is_array()) {
    for (const json& n : j["normalizers"]) AUGUR_RETURN_IF_ERROR(ParseNormalizer(source, n, nfc));
    return absl::OkStatus();
  }
  return Err(source, absl::StrCat("normalizer '", type.empty() ? j.dump() : type,
                                  "' is not supported (null or NFC)"));
}

// BOS from the post-processor: the special token a single-sequence template starts with.
void ParsePostProcessor(const json& j, const BpeTokenizer::Impl& m, bool* add_bos, int32_t* bos) {
  const std::string type = TypeOf(j);
  if (type == "Sequence" && j.contains("processors") && j["processors"].is_array()) {
    for (const json& p : j["processors"]) ParsePostProcessor(p, m, add_bos, bos);
  } else if (type == "TemplateProcessing" && j.contains("single") && j["single"].is_array() &&
             !j["single"].empty()) {
    const json& first = j["single"][0];
    if (first.is_object() && first.contains("SpecialToken")) {
      const std::string name = first["SpecialToken"].value("id", std::string());
      *add_bos = true;
      const auto it = m.token_to_id.find(name);
      if (it != m.token_to_id.end()) *bos = it->second;
    }
  } else if ((type == "RobertaProcessing" || type == "BertProcessing") && j.contains("cls") &&
             j["cls"].is_array() && j["cls"].size() == 2 && j["cls"][1].is_number_integer()) {
    *add_bos = true;
    *bos = j["cls"][1].get<int32_t>();
  }
}

int32_t FirstPresent(const BpeTokenizer::Impl& m, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    const auto it = m.token_to_id.find(n);
    if (it != m.token_to_id.end()) return it->second;
  }
  return -1;
}

std::pair<std::string, std::string> SplitMerge(const std::string& s) {
  const size_t sp = s.find(' ', 1);
  if (sp == std::string::npos) return {s, ""};
  return {s.substr(0, sp), s.substr(sp + 1)};
}

}  // namespace

absl::Status BpeTokenizer::Impl::Finish() {
  const int32_t n = vocab_size();
  id_bytes.assign(n, "");
  special.resize(n, false);
  raw_decode.resize(n, false);
  for (int32_t id = 0; id < n; ++id) {
    id_bytes[id] = raw_decode[id] ? id_to_token[id] : bpe::TokenTextToBytes(id_to_token[id]);
    const bool model_token = in_model.empty() ? true : in_model[id];
    if (model_token && !id_to_token[id].empty()) bytes_to_id.emplace(bpe::TokenTextToBytes(id_to_token[id]), id);
  }
  // Longest first (ties by id) for both matching modes.
  for (auto* list : {&added_raw, &added_normalized}) {
    std::stable_sort(list->begin(), list->end(), [](const bpe::AddedToken& a, const bpe::AddedToken& b) {
      return a.content.size() > b.content.size();
    });
  }
  std::string canon = "augur-bpe-1\n";
  for (int32_t id = 0; id < n; ++id) absl::StrAppend(&canon, id, "\t", id_to_token[id], "\n");
  for (const auto& [a, b] : merge_list) absl::StrAppend(&canon, a, " ", b, "\n");
  absl::StrAppend(&canon, normalizer_json.dump(), "\n", pre_tokenizer_json.dump(), "\n",
                  ignore_merges, static_cast<int>(special_match), "\n");
  for (const auto* list : {&added_raw, &added_normalized}) {
    for (const bpe::AddedToken& t : *list) {
      absl::StrAppend(&canon, t.id, "\t", t.content, "\t", t.special, t.lstrip, t.rstrip,
                      t.single_word, t.normalized, "\n");
    }
  }
  fingerprint = Fingerprint(canon);
  return absl::OkStatus();
}

absl::StatusOr<BpeTokenizer> BpeTokenizer::FromTokenizerJson(const std::string& json_text,
                                                             const std::string& source) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Err(source, "not a JSON object (tokenizer.json expected)");
  const json& model = j.contains("model") ? j["model"] : json();
  const std::string type = TypeOf(model);
  if (type != "BPE") {
    return Err(source, absl::StrCat("model type '", type.empty() ? "(none)" : type,
                                    "' is not supported (byte-level BPE only)"));
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) return Err(source, "model.vocab is missing");
  if (!model.contains("merges") || !model["merges"].is_array()) return Err(source, "model.merges is missing");
  if (BoolOr(model, "byte_fallback", false)) return Err(source, "model.byte_fallback=true is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
      return Err(source, absl::StrCat("model.", key, " is not supported"));
    }
  }
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0) {
    return Err(source, "model.dropout > 0 is not supported (encoding would be random)");
  }
  auto m = std::make_shared<Impl>();
  m->source = source;
  m->ignore_merges = BoolOr(model, "ignore_merges", false);
  int32_t max_id = -1;
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 30)) {
      return Err(source, absl::StrCat("model.vocab['", tok, "'] is not a valid id"));
    }
    max_id = std::max(max_id, id.get<int32_t>());
  }
  std::vector<bpe::AddedToken> added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const json& a : j["added_tokens"]) {
      bpe::AddedToken t;
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || a["id"].get<int64_t>() < 0 ||
          a["id"].get<int64_t>() > (1 << 30) || !a.contains("content") || !a["content"].is_string()) {
        return Err(source, absl::StrCat("added_tokens entry ", a.dump(), " needs an id and a content"));
      }
      t.id = a["id"].get<int32_t>();
      t.content = a["content"].get<std::string>();
      t.special = BoolOr(a, "special", false);
      t.lstrip = BoolOr(a, "lstrip", false);
      t.rstrip = BoolOr(a, "rstrip", false);
      t.single_word = BoolOr(a, "single_word", false);
      t.normalized = BoolOr(a, "normalized", !t.special);
      max_id = std::max(max_id, t.id);
      if (!t.content.empty()) added.push_back(std::move(t));
    }
  }
  m->id_to_token.assign(max_id + 1, "");
  for (const auto& [tok, id] : model["vocab"].items()) {
    const int32_t i = id.get<int32_t>();
    if (!m->id_to_token[i].empty()) {
      return Err(source, absl::StrCat("model.vocab gives id ", i, " to both '", m->id_to_token[i],
                                      "' and '", tok, "'"));
    }
    m->id_to_token[i] = tok;
    m->token_to_id[tok] = i;
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = m->token_to_id.find(bpe::BytesToTokenText(std::string(1, static_cast<char>(b))));
    m->byte_id[b] = it == m->token_to_id.end() ? -1 : it->second;
  }
  int32_t rank = 0;
  for (const json& e : model["merges"]) {
    std::pair<std::string, std::string> ab;
    if (e.is_string()) {
      ab = SplitMerge(e.get<std::string>());
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      ab = {e[0].get<std::string>(), e[1].get<std::string>()};
    } else {
      return Err(source, absl::StrCat("model.merges[", rank, "] is not \"a b\" or [a, b]"));
    }
    const auto ia = m->token_to_id.find(ab.first), ib = m->token_to_id.find(ab.second),
               ic = m->token_to_id.find(ab.first + ab.second);
    if (ab.second.empty() || ia == m->token_to_id.end() || ib == m->token_to_id.end() ||
        ic == m->token_to_id.end()) {
      return Err(source, absl::StrCat("model.merges[", rank, "] '", ab.first, " ", ab.second,
                                      "' uses a token that is not in model.vocab"));
    }
    const uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    m->merges[key] = {rank, ic->second};  // a repeated pair: the later rank wins, as in tokenizers
    m->merge_list.push_back(std::move(ab));
    ++rank;
  }
  // Added tokens join the id <-> text maps only now: merges, bytes and ignore_merges look at
  // the model's vocabulary alone, as in tokenizers.
  m->in_model.assign(max_id + 1, false);
  for (int32_t id = 0; id <= max_id; ++id) m->in_model[id] = !m->id_to_token[id].empty();
  m->special.assign(max_id + 1, false);
  m->raw_decode.assign(max_id + 1, false);
  for (const bpe::AddedToken& t : added) {
    if (m->id_to_token[t.id].empty()) m->id_to_token[t.id] = t.content;
    m->token_to_id.emplace(t.content, t.id);
    m->special[t.id] = t.special;
    m->raw_decode[t.id] = true;
    (t.normalized ? m->added_normalized : m->added_raw).push_back(t);
  }
  m->normalizer_json = j.value("normalizer", json());
  AUGUR_RETURN_IF_ERROR(ParseNormalizer(source, m->normalizer_json, &m->nfc));
  m->pre_tokenizer_json = j.value("pre_tokenizer", json());
  bool byte_level = false;
  if (!m->pre_tokenizer_json.is_null()) {
    AUGUR_RETURN_IF_ERROR(ParsePre(source, m->pre_tokenizer_json, &m->pre_steps, &byte_level));
  }
  if (!byte_level) return Err(source, "pre_tokenizer has no ByteLevel step (byte-level BPE only)");
  const json decoder = j.value("decoder", json());
  if (!decoder.is_null() && TypeOf(decoder) != "ByteLevel") {
    return Err(source, absl::StrCat("decoder '", TypeOf(decoder), "' is not supported (ByteLevel)"));
  }
  m->post_processor_json = j.value("post_processor", json());
  ParsePostProcessor(m->post_processor_json, *m, &m->add_bos, &m->bos_id);
  // tokenizer.json does not name EOS/PAD; these are the usual names (tokenizer_config.json,
  // when the caller has it, is the better source).
  m->eos_id = FirstPresent(*m, {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"});
  m->pad_id = FirstPresent(*m, {"<|pad|>", "<pad>", "[PAD]", "<|finetune_right_pad_id|>"});
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    m->unk_id = FirstPresent(*m, {model["unk_token"].get_ref<const std::string&>().c_str()});
  }
  m->special_match = bpe::SpecialMatch::kLeftmostLongest;
  AUGUR_RETURN_IF_ERROR(m->Finish());
  BpeTokenizer t;
  t.impl_ = std::move(m);
  return t;
}

absl::StatusOr<BpeTokenizer> BpeTokenizer::FromGgufVocab(const GgufBpeVocab& v,
                                                         const std::string& source) {
  if (v.model != "gpt2") {
    return Err(source, absl::StrCat("tokenizer.ggml.model '", v.model, "' is not supported (gpt2 only)"));
  }
  const GgufPre* pre = nullptr;
  for (const GgufPre& p : GgufPreTable()) {
    if (std::find(p.names.begin(), p.names.end(), v.pre) != p.names.end()) pre = &p;
  }
  if (pre == nullptr) {
    return Err(source, absl::StrCat("tokenizer.ggml.pre '", v.pre, "' is not supported (known: ",
                                    "default, gpt-2, llama-bpe, qwen2, smollm, starcoder, deepseek-coder and aliases)"));
  }
  if (v.tokens.empty()) return Err(source, "tokenizer.ggml.tokens is empty");
  if (v.merges.empty()) return Err(source, "tokenizer.ggml.merges is missing");
  if (!v.token_types.empty() && v.token_types.size() != v.tokens.size()) {
    return Err(source, absl::StrCat("tokenizer.ggml.token_type has ", v.token_types.size(),
                                    " entries for ", v.tokens.size(), " tokens"));
  }
  auto m = std::make_shared<Impl>();
  m->source = source;
  m->ignore_merges = pre->ignore_merges;
  const int32_t n = static_cast<int32_t>(v.tokens.size());
  m->id_to_token.resize(n);
  m->special.assign(n, false);
  m->raw_decode.assign(n, false);
  for (int32_t i = 0; i < n; ++i) {
    // llama.cpp renames an empty token so that the vocabulary stays one-to-one.
    std::string tok = v.tokens[i].empty() ? absl::StrCat("[EMPTY_", i, "]") : v.tokens[i];
    if (!m->token_to_id.emplace(tok, i).second) {
      return Err(source, absl::StrCat("token '", tok, "' appears twice (ids ", m->token_to_id[tok], " and ", i, ")"));
    }
    m->id_to_token[i] = std::move(tok);
  }
  for (int32_t i = 0; i < n; ++i) {
    const int32_t type = v.token_types.empty() ? 1 : v.token_types[i];
    const bool special = type == 2 || type == 3 || type == 4 ||
                         GgufControlNames().count(m->id_to_token[i]) > 0;
    if (!special) continue;
    m->special[i] = true;
    m->raw_decode[i] = true;
    bpe::AddedToken t;
    t.content = m->id_to_token[i];
    t.id = i;
    t.special = type != 4;
    m->added_raw.push_back(std::move(t));
  }
  // Pieces by text: tokens, then (llama.cpp merges strings) merge results that are not tokens.
  absl::flat_hash_map<std::string, int32_t> extra;
  const auto piece_id = [&](const std::string& s) -> int32_t {
    const auto it = m->token_to_id.find(s);
    if (it != m->token_to_id.end()) return it->second;
    const auto [e, added] = extra.emplace(s, n + static_cast<int32_t>(m->extra_pieces.size()));
    if (added) m->extra_pieces.push_back(bpe::TokenTextToBytes(s));
    return e->second;
  };
  for (int b = 0; b < 256; ++b) m->byte_id[b] = piece_id(bpe::BytesToTokenText(std::string(1, static_cast<char>(b))));
  for (size_t r = 0; r < v.merges.size(); ++r) {
    auto ab = SplitMerge(v.merges[r]);
    if (ab.second.empty()) continue;  // llama.cpp maps it to an empty pair that never matches
    const int32_t a = piece_id(ab.first), b = piece_id(ab.second), c = piece_id(ab.first + ab.second);
    const uint64_t key = (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
    if (m->merges.emplace(key, bpe::Merge{static_cast<int32_t>(r), c}).second) {
      m->merge_list.push_back(std::move(ab));  // a repeated pair: the first rank wins, as in llama.cpp
    }
  }
  json seq = json::array();
  for (const std::string& re : pre->regexes) {
    AUGUR_RETURN_IF_ERROR(AddSplit(source, re, SplitBehavior::kIsolated, false, &m->pre_steps));
    seq.push_back({{"type", "Split"}, {"pattern", {{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}});
  }
  seq.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  m->pre_tokenizer_json = {{"type", "Sequence"}, {"pretokenizers", seq}};
  const auto in_range = [&](int32_t id) { return id >= 0 && id < n ? id : -1; };
  m->bos_id = in_range(v.bos_id);
  m->eos_id = in_range(v.eos_id);
  m->pad_id = in_range(v.pad_id);
  m->unk_id = in_range(v.unk_id);
  m->add_bos = v.add_bos && m->bos_id >= 0;
  if (m->add_bos) {
    json single = json::array({{{"SpecialToken", {{"id", m->id_to_token[m->bos_id]}, {"type_id", 0}}}},
                               {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}});
    json pair = single;
    pair.push_back({{"SpecialToken", {{"id", m->id_to_token[m->bos_id]}, {"type_id", 1}}}});
    pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
    m->post_processor_json = {
        {"type", "TemplateProcessing"}, {"single", single}, {"pair", pair},
        {"special_tokens", {{m->id_to_token[m->bos_id],
                             {{"id", m->id_to_token[m->bos_id]}, {"ids", {m->bos_id}},
                              {"tokens", {m->id_to_token[m->bos_id]}}}}}}};
  }
  m->special_match = bpe::SpecialMatch::kLongestFirst;
  AUGUR_RETURN_IF_ERROR(m->Finish());
  BpeTokenizer t;
  t.impl_ = std::move(m);
  return t;
}

std::string BpeTokenizer::ToTokenizerJson() const {
  using ojson = nlohmann::ordered_json;
  if (!impl_) return "";
  const Impl& m = *impl_;
  ojson added = ojson::array();
  std::vector<bpe::AddedToken> all = m.added_raw;
  all.insert(all.end(), m.added_normalized.begin(), m.added_normalized.end());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const bpe::AddedToken& t : all) {
    added.push_back({{"id", t.id}, {"content", t.content}, {"single_word", t.single_word},
                     {"lstrip", t.lstrip}, {"rstrip", t.rstrip}, {"normalized", t.normalized},
                     {"special", t.special}});
  }
  ojson vocab = ojson::object();
  for (int32_t id = 0; id < m.vocab_size(); ++id) {
    const bool model_token = m.in_model.empty() || m.in_model[id];  // added-only ids stay out
    if (model_token && !m.id_to_token[id].empty() && m.token_to_id.at(m.id_to_token[id]) == id) {
      vocab[m.id_to_token[id]] = id;
    }
  }
  ojson merges = ojson::array();
  for (const auto& [a, b] : m.merge_list) {
    // Hugging Face requires both sides and the result in the vocabulary; a GGUF merge over
    // pieces that are not tokens cannot be written (and only matters for such pieces).
    if (m.token_to_id.count(a) && m.token_to_id.count(b) && m.token_to_id.count(a + b)) {
      merges.push_back(ojson::array({a, b}));
    }
  }
  ojson out;
  out["version"] = "1.0";
  out["truncation"] = nullptr;
  out["padding"] = nullptr;
  out["added_tokens"] = std::move(added);
  out["normalizer"] = ojson::parse(m.normalizer_json.dump());
  out["pre_tokenizer"] = ojson::parse(m.pre_tokenizer_json.dump());
  out["post_processor"] = ojson::parse(m.post_processor_json.dump());
  out["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  out["model"] = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", m.ignore_merges},
                  {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};
  return out.dump();
}

}  // namespace augur
