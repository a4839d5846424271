// Reduced draft vocabularies (as FR-Spec and EAGLE-3's d2t): a model drafter's head scores only
// the N tokens its teacher data uses most, and the drafter maps its ids back to the target's.
// At SmolLM2's 49152-token vocabulary the head is most of a small drafter's cost (576 x 49152
// multiply-adds per token against ~7M in two layers), so N = 4096 makes drafting several times
// cheaper. Exactness is unchanged: greedy verification only compares tokens, and the accept
// rule of sampling holds for any draft distribution q, here zero outside the subset.
//
// draft_vocab.json in a drafter checkpoint (written by augur distill ar|nat --draft-vocab N):
//   {"format": "augur-draft-vocab", "version": 1, "source": teacher store, "size": N,
//    "ranked": every token id, most frequent first (ties: lower id first)}
// so `--drafter ar:DIR,vocab=M` can take any other size M from the same ranking.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur {

class TeacherStore;

inline constexpr char kDraftVocabFile[] = "draft_vocab.json";

struct DraftVocab {
  std::string source;
  int64_t size = 0;             // the default N
  std::vector<int64_t> ranked;  // a permutation of [0, V)
  // The first n ids of the ranking (n <= V), the subset a head of n rows covers.
  std::vector<int64_t> Top(int64_t n) const { return {ranked.begin(), ranked.begin() + n}; }
};

// How often each token id appears in the continuations (after the prompt) of every sequence
// of the teacher store: what the target says, which is what a drafter must guess.
absl::StatusOr<std::vector<int64_t>> CountTeacherTokens(const TeacherStore& store, int64_t vocab);
// Ids by count, descending; ties (and unseen ids) by ascending id.
std::vector<int64_t> RankByCount(const std::vector<int64_t>& counts);

// Reads DIR/draft_vocab.json; nullopt when absent. Errors name the file: not JSON, wrong
// format, a ranking that is not a permutation of [0, vocab), size outside [1, vocab].
absl::StatusOr<std::optional<DraftVocab>> ReadDraftVocab(const std::string& dir, int64_t vocab);
// Writes it atomically (temporary name, then rename).
absl::Status WriteDraftVocab(const std::string& dir, const DraftVocab& v);

// The drafter side of the mapping: q over the subset [.., N] scattered into the full
// vocabulary [.., V] (zero elsewhere), and a subset index back to its token id.
at::Tensor ExpandToVocab(const at::Tensor& q_sub, const at::Tensor& ids, int64_t vocab);

}  // namespace augur
