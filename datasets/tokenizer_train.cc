#include "datasets/tokenizer_train.h"

#include "core/tokenizer_spm.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_replace.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_map>

#include "core/fs.h"
#include "core/progress.h"
#include "core/tokenizer.h"

namespace augur {
namespace {

constexpr size_t kChunkBytes = 4096;
// SentencePiece drops longer sentences; chunks never exceed kChunkBytes.
constexpr int kMaxSentenceBytes = 16384;

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>* v) : v_(v) {}
  bool done() const override { return i_ >= v_->size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return (*v_)[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>* v_;
  size_t i_ = 0;
};

uint64_t HashKey(uint64_t seed, std::string_view key, uint64_t index) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= index + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

// The SentencePiece settings that make a verbatim code tokenizer (see tokenizer_train.h).
std::unordered_map<std::string, std::string> TrainerArgs(const TokenizerTrainOptions& o) {
  return {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_by_whitespace", "true"},
      {"split_digits", "true"},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      {"control_symbols", absl::StrCat(kPadPiece, ",", kMaskPiece)},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"max_sentence_length", std::to_string(kMaxSentenceBytes)},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"num_threads", std::to_string(std::max(1, o.num_threads))},
      {"minloglevel", "1"},
  };
}

std::string OneLine(std::string s) {
  return absl::StrReplaceAll(s, {{"\n", " "}, {"\r", " "}});
}

}  // namespace

std::vector<std::string_view> ChunkLines(std::string_view text, size_t max_bytes) {
  std::vector<std::string_view> out;
  size_t start = 0, pos = 0;  // current chunk is text[start, pos)
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t line_end = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line_end - pos > max_bytes) {
      if (pos > start) out.push_back(text.substr(start, pos - start));
      // Cut the long line at character boundaries (never before a UTF-8 continuation byte).
      while (line_end - pos > max_bytes) {
        size_t cut = pos + max_bytes;
        while (cut > pos + 1 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
        out.push_back(text.substr(pos, cut - pos));
        pos = cut;
      }
      start = pos;
    } else if (line_end - start > max_bytes) {
      out.push_back(text.substr(start, pos - start));
      start = pos;
    }
    pos = line_end;
  }
  if (pos > start) out.push_back(text.substr(start, pos - start));
  return out;
}

absl::StatusOr<TokenizerTrainSummary> TrainTokenizer(const Corpus& corpus,
                                                     const TokenizerTrainOptions& options,
                                                     const std::string& out_dir) {
  if (options.vocab_size < 300 || options.vocab_size > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer: vocab size ", options.vocab_size,
        " out of range [300, 1048576] (261 ids go to specials and byte fallback)"));
  }
  if (options.valid_fraction < 0 || options.valid_fraction >= 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: valid fraction ", options.valid_fraction, " outside [0, 1)"));
  }
  TokenizerTrainSummary summary;
  auto t0 = std::chrono::steady_clock::now();

  // 1) Read and sample training sentences. The budget is spread evenly over the corpus
  //    (keep probability from the expected size) and hard-capped at 1.25x.
  const double expected = std::max(1.0, corpus.total_bytes() * (1.0 - options.valid_fraction));
  const double keep = std::min(1.0, static_cast<double>(options.max_train_bytes) / expected);
  const int64_t hard_cap = options.max_train_bytes + options.max_train_bytes / 4;
  std::vector<std::string> sentences;
  std::unique_ptr<Progress> progress;
  if (options.progress) {
    progress = std::make_unique<Progress>("reading", corpus.progress_total(), corpus.progress_unit());
  }
  absl::Status st = corpus.ForEach(
      [&](const Document& doc) -> absl::Status {
        if (IsValidSplit(doc.split_key, options.valid_fraction)) return absl::OkStatus();
        ++summary.docs;
        summary.bytes_seen += static_cast<int64_t>(doc.text.size());
        std::vector<std::string_view> chunks = ChunkLines(doc.text, kChunkBytes);
        for (size_t i = 0; i < chunks.size(); ++i) {
          if (summary.bytes_used >= hard_cap) break;
          double u = static_cast<double>(HashKey(options.seed, doc.split_key, i) >> 11) * 0x1.0p-53;
          if (keep < 1.0 && u >= keep) continue;
          sentences.emplace_back(chunks[i]);
          summary.bytes_used += static_cast<int64_t>(chunks[i].size());
        }
        return absl::OkStatus();
      },
      [&](int64_t files, int64_t bytes) {
        if (progress) {
          progress->update(corpus.progress_value(files, bytes),
                           absl::StrCat("docs ", summary.docs, " sampled ", summary.bytes_used >> 20, " MB"));
        }
      });
  AUGUR_RETURN_IF_ERROR(st);
  if (progress) progress->finish(absl::StrCat("docs ", summary.docs, " sampled ", summary.bytes_used >> 20, " MB"));
  if (sentences.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer: ", corpus.describe(), ": no training text (no documents, all empty, or all in the valid split)"));
  }
  summary.sentences = static_cast<int64_t>(sentences.size());
  auto t1 = std::chrono::steady_clock::now();
  summary.read_seconds = std::chrono::duration<double>(t1 - t0).count();

  // 2) Train. SentencePiece has no progress callback; say what is happening instead.
  std::fprintf(stderr, "tokenizer: training BPE, vocab %d, on %lld sentences (%.1f MB of %.1f MB read)...\n",
               options.vocab_size, static_cast<long long>(summary.sentences),
               summary.bytes_used / 1048576.0, summary.bytes_seen / 1048576.0);
  std::fflush(stderr);
  VectorIterator it(&sentences);
  std::string proto;
  auto spm_status = sentencepiece::SentencePieceTrainer::Train(TrainerArgs(options), &it, &proto);
  if (!spm_status.ok()) {
    std::string msg = OneLine(spm_status.ToString());
    // The common case: a vocabulary smaller than the characters it must cover.
    int have = 0, need = 0;
    size_t at = msg.find("Vocabulary size is smaller than required_chars. ");
    if (at != std::string::npos &&
        std::sscanf(msg.c_str() + at + 48, "%d vs %d", &have, &need) == 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer: vocab size ", have, " is too small for this corpus: its characters and the ",
          "special and byte pieces need ", need, "; raise --vocab-size"));
    }
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: sentencepiece training failed: ", msg));
  }
  auto t2 = std::chrono::steady_clock::now();
  summary.train_seconds = std::chrono::duration<double>(t2 - t1).count();

  // 3) Check the model keeps text verbatim on a sample of what it was trained on.
  AUGUR_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromSerialized(proto, "trained model"));
  const size_t stride = std::max<size_t>(1, sentences.size() / 200);
  for (size_t i = 0; i < sentences.size(); i += stride) {
    auto back = tok.Decode(tok.Encode(sentences[i]));
    ++summary.roundtrip_checked;
    if (!back.ok() || *back != sentences[i]) ++summary.roundtrip_failed;
  }
  sentences.clear();
  sentences.shrink_to_fit();

  // 4) Write the model and its companions.
  AUGUR_RETURN_IF_ERROR(MakeDirs(out_dir));
  summary.model_path = absl::StrCat(out_dir, "/", kTokenizerFile);
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(summary.model_path, tok.serialized()));
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(out_dir, "/tokenizer_config.json"),
                                        HfTokenizerConfig(tok).dump(2) + "\n"));
  nlohmann::json prov = {
      {"fingerprint", tok.fingerprint()},
      {"vocab_size", tok.vocab_size()},
      {"model_type", "bpe"},
      {"sources", corpus.sources()},
      {"valid_fraction", options.valid_fraction},
      {"docs", summary.docs},
      {"bytes_seen", summary.bytes_seen},
      {"bytes_used", summary.bytes_used},
      {"sentences", summary.sentences},
      {"train_seconds", summary.train_seconds},
      {"command", options.command_line},
  };
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(out_dir, "/augur_tokenizer.json"), prov.dump(2) + "\n"));
  summary.fingerprint = tok.fingerprint();
  summary.vocab_size = tok.vocab_size();
  return summary;
}

}  // namespace augur
