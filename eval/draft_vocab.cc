#include "eval/draft_vocab.h"

#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/fs.h"
#include "datasets/teacher_store.h"

namespace augur {
namespace {

absl::Status Bad(const std::string& path, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", why));
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> CountTeacherTokens(const TeacherStore& store, int64_t vocab) {
  std::vector<int64_t> counts(static_cast<size_t>(vocab), 0);
  for (int64_t s = 0; s < store.num_sequences(); ++s) {
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store.Read(s));
    for (int64_t i = std::max<int64_t>(seq.prompt_len, 0); i < seq.length(); ++i) {
      const int32_t t = seq.tokens[static_cast<size_t>(i)];
      if (t < 0 || t >= vocab)
        return Bad(store.path(), absl::StrCat("sequence ", s, ": token id ", t, " outside the vocabulary ", vocab));
      ++counts[static_cast<size_t>(t)];
    }
  }
  return counts;
}

std::vector<int64_t> RankByCount(const std::vector<int64_t>& counts) {
  std::vector<int64_t> ids(counts.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int64_t a, int64_t b) { return counts[a] > counts[b]; });
  return ids;
}

absl::StatusOr<std::optional<DraftVocab>> ReadDraftVocab(const std::string& dir, int64_t vocab) {
  const std::string path = JoinPath(dir, kDraftVocabFile);
  if (!FileExists(path)) return std::optional<DraftVocab>();
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(path, "not a JSON object");
  if (j.value("format", "") != "augur-draft-vocab") return Bad(path, "format is not augur-draft-vocab");
  if (!j.contains("ranked") || !j["ranked"].is_array()) return Bad(path, "no \"ranked\" array");
  if (!j.contains("size") || !j["size"].is_number_integer()) return Bad(path, "no integer \"size\"");
  DraftVocab v;
  v.source = j.value("source", "");
  v.size = j["size"].get<int64_t>();
  if (static_cast<int64_t>(j["ranked"].size()) != vocab)
    return Bad(path, absl::StrCat("ranks ", j["ranked"].size(), " ids; the vocabulary has ", vocab));
  if (v.size < 1 || v.size > vocab) return Bad(path, absl::StrCat("size ", v.size, " outside [1, ", vocab, "]"));
  std::vector<bool> seen(static_cast<size_t>(vocab), false);
  v.ranked.reserve(static_cast<size_t>(vocab));
  for (const auto& e : j["ranked"]) {
    if (!e.is_number_integer()) return Bad(path, "\"ranked\" holds a non-integer");
    const int64_t id = e.get<int64_t>();
    if (id < 0 || id >= vocab || seen[id]) return Bad(path, absl::StrCat("\"ranked\" is not a permutation (id ", id, ")"));
    seen[id] = true;
    v.ranked.push_back(id);
  }
  return std::optional<DraftVocab>(std::move(v));
}

absl::Status WriteDraftVocab(const std::string& dir, const DraftVocab& v) {
  const nlohmann::json j = {{"format", "augur-draft-vocab"}, {"version", 1}, {"source", v.source},
                            {"size", v.size}, {"ranked", v.ranked}};
  return WriteFileAtomic(JoinPath(dir, kDraftVocabFile), j.dump());
}

at::Tensor ExpandToVocab(const at::Tensor& q_sub, const at::Tensor& ids, int64_t vocab) {
  std::vector<int64_t> shape(q_sub.sizes().begin(), q_sub.sizes().end());
  shape.back() = vocab;
  at::Tensor q = torch::zeros(shape, q_sub.options());
  q.index_copy_(q.dim() - 1, ids, q_sub);
  return q;
}

}  // namespace augur
