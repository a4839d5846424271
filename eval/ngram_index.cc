#include "eval/ngram_index.h"

#include <algorithm>
#include <numeric>
#include <queue>

#include "core/fs.h"
#include "core/h5.h"
#include "datasets/token_store.h"

namespace augur {

std::vector<uint32_t> BuildSuffixArray(const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  std::vector<uint32_t> sa(n);
  if (n == 0) return sa;
  // rank[i]: the order of suffix i by its first k tokens (ties share a rank). Each round
  // sorts by (rank[i], rank[i+k]) and so doubles k; a suffix that ends first sorts first
  // (second key 0 < any rank + 1). Done when all ranks differ.
  std::vector<uint32_t> rank(n), next(n);
  {
    std::vector<int32_t> values(tokens);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    for (int64_t i = 0; i < n; ++i)
      rank[i] = static_cast<uint32_t>(std::lower_bound(values.begin(), values.end(), tokens[i]) - values.begin());
  }
  std::vector<std::pair<uint64_t, uint32_t>> keyed(n);
  for (int64_t k = 1;; k *= 2) {
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t second = i + k < n ? static_cast<uint64_t>(rank[i + k]) + 1 : 0;
      keyed[i] = {(static_cast<uint64_t>(rank[i]) << 32) | second, static_cast<uint32_t>(i)};
    }
    std::sort(keyed.begin(), keyed.end());
    next[keyed[0].second] = 0;
    for (int64_t j = 1; j < n; ++j)
      next[keyed[j].second] = next[keyed[j - 1].second] + (keyed[j].first != keyed[j - 1].first ? 1 : 0);
    rank.swap(next);
    if (rank[keyed[n - 1].second] == static_cast<uint32_t>(n - 1) || k >= n) break;
  }
  for (int64_t j = 0; j < n; ++j) sa[j] = keyed[j].second;
  return sa;
}

std::vector<uint32_t> BuildSuffixArrayReference(const std::vector<int32_t>& tokens) {
  std::vector<uint32_t> sa(tokens.size());
  std::iota(sa.begin(), sa.end(), 0u);
  std::sort(sa.begin(), sa.end(), [&](uint32_t a, uint32_t b) {
    return std::lexicographical_compare(tokens.begin() + a, tokens.end(), tokens.begin() + b, tokens.end());
  });
  return sa;
}

NgramIndex NgramIndex::FromTokens(std::vector<int32_t> tokens, int64_t vocab_size) {
  NgramIndex index;
  index.tokens_ = std::move(tokens);
  index.sa_ = BuildSuffixArray(index.tokens_);
  index.vocab_size_ = vocab_size;
  return index;
}

absl::Status NgramIndex::Save(const std::string& path, const std::string& source,
                              const std::string& provenance) const {
  const std::string tmp = TempPathFor(path);
  {
    AUGUR_ASSIGN_OR_RETURN(h5::File file, h5::File::Create(tmp));
    const int64_t n = size();
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(file.id(), "format", kNgramFormat));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(file.id(), "format_version", kNgramVersion));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(file.id(), "vocab_size", vocab_size_));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(file.id(), "num_tokens", n));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(file.id(), "source", source));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(file.id(), "created_by", provenance));
    AUGUR_RETURN_IF_ERROR(h5::Dataset::CreateFixed(file.id(), "tokens", h5::DType::kI32, {n}, tokens_.data()).status());
    AUGUR_RETURN_IF_ERROR(
        h5::Dataset::CreateFixed(file.id(), "suffix_array", h5::DType::kU32, {n}, sa_.data()).status());
    AUGUR_RETURN_IF_ERROR(file.Close());
  }
  return CommitTempFile(tmp, path);
}

absl::StatusOr<std::shared_ptr<const NgramIndex>> NgramIndex::Open(const std::string& path) {
  AUGUR_ASSIGN_OR_RETURN(h5::File file, h5::File::Open(path));
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("ngram datastore: ", path, ": ", what));
  };
  auto format = h5::ReadAttrString(file.id(), "format");
  if (!format.ok() || *format != kNgramFormat)
    return bad("not an augur n-gram datastore (build one with: augur data datastore --store FILE.h5 --out OUT.h5)");
  AUGUR_ASSIGN_OR_RETURN(int64_t version, h5::ReadAttrInt(file.id(), "format_version"));
  if (version != kNgramVersion) return bad(absl::StrCat("format version ", version, " (this augur reads ", kNgramVersion, ")"));
  auto index = std::make_shared<NgramIndex>();
  AUGUR_ASSIGN_OR_RETURN(index->vocab_size_, h5::ReadAttrInt(file.id(), "vocab_size"));
  AUGUR_ASSIGN_OR_RETURN(int64_t n, h5::ReadAttrInt(file.id(), "num_tokens"));
  AUGUR_ASSIGN_OR_RETURN(h5::Dataset tokens, h5::Dataset::Open(file.id(), "tokens"));
  AUGUR_ASSIGN_OR_RETURN(h5::Dataset sa, h5::Dataset::Open(file.id(), "suffix_array"));
  if (tokens.shape() != std::vector<int64_t>{n} || sa.shape() != std::vector<int64_t>{n})
    return bad(absl::StrCat("/tokens and /suffix_array must both have num_tokens = ", n, " rows"));
  AUGUR_ASSIGN_OR_RETURN(index->tokens_, tokens.ReadAll<int32_t>());
  AUGUR_ASSIGN_OR_RETURN(index->sa_, sa.ReadAll<uint32_t>());
  // The suffix array must be a permutation (a cheap check that catches truncated files).
  std::vector<bool> seen(n, false);
  for (uint32_t s : index->sa_) {
    if (s >= n || seen[s]) return bad("/suffix_array is not a permutation of 0..num_tokens-1");
    seen[s] = true;
  }
  for (int32_t t : index->tokens_)
    if (t < 0 || t >= index->vocab_size_) return bad(absl::StrCat("/tokens holds id ", t, " outside the vocabulary"));
  return std::shared_ptr<const NgramIndex>(std::move(index));
}

namespace {

// <0: the suffix at s sorts before `pattern` (and does not start with it); 0: it starts
// with pattern[0, n); >0: after.
int ComparePrefix(const std::vector<int32_t>& tokens, int64_t s, const int64_t* pattern, int64_t n) {
  const int64_t size = static_cast<int64_t>(tokens.size());
  for (int64_t j = 0; j < n; ++j) {
    if (s + j >= size) return -1;
    if (tokens[s + j] != pattern[j]) return tokens[s + j] < pattern[j] ? -1 : 1;
  }
  return 0;
}

}  // namespace

std::pair<int64_t, int64_t> NgramIndex::Range(const int64_t* pattern, int64_t n) const {
  auto lo = std::partition_point(sa_.begin(), sa_.end(),
                                 [&](uint32_t s) { return ComparePrefix(tokens_, s, pattern, n) < 0; });
  auto hi = std::partition_point(lo, sa_.end(), [&](uint32_t s) { return ComparePrefix(tokens_, s, pattern, n) == 0; });
  return {lo - sa_.begin(), hi - sa_.begin()};
}

int64_t NgramIndex::LongestMatch(const std::vector<int64_t>& context, int64_t max_ngram, int64_t min_ngram,
                                 std::pair<int64_t, int64_t>* range) const {
  const int64_t len = static_cast<int64_t>(context.size());
  for (int64_t n = std::min(max_ngram, len); n >= std::max<int64_t>(min_ngram, 1); --n) {
    const auto r = Range(context.data() + len - n, n);
    // The one suffix that is exactly the pattern (it ends the datastore) has no follower;
    // it sorts first in the range.
    const int64_t followed = (r.second - r.first) - (r.second > r.first && sa_[r.first] + n >= size() ? 1 : 0);
    if (followed > 0) {
      *range = r;
      return n;
    }
  }
  return 0;
}

std::vector<Continuation> NgramIndex::Continuations(std::pair<int64_t, int64_t> range, int64_t n, int64_t depth,
                                                    int64_t branch, int64_t max_nodes) const {
  struct Candidate {
    int64_t count, seq;  // most frequent first, then first pushed
    int64_t lo, hi, offset;
    int32_t token, parent;
    bool operator<(const Candidate& o) const { return count != o.count ? count < o.count : seq > o.seq; }
  };
  std::priority_queue<Candidate> queue;
  int64_t seq = 0;
  // Pushes the top `branch` continuations of the suffixes in [lo, hi) at token `offset`.
  // Those suffixes agree on their first `offset` tokens, so they are sorted by the token at
  // `offset` (a suffix that ends there comes first): groups are found by binary search.
  auto push_children = [&](int64_t lo, int64_t hi, int64_t offset, int32_t parent) {
    std::vector<Candidate> groups;
    int64_t pos = lo;
    while (pos < hi && sa_[pos] + offset >= size()) ++pos;
    while (pos < hi) {
      const int32_t t = tokens_[sa_[pos] + offset];
      const int64_t end = std::partition_point(sa_.begin() + pos, sa_.begin() + hi,
                                               [&](uint32_t s) { return tokens_[s + offset] <= t; }) - sa_.begin();
      groups.push_back({end - pos, 0, pos, end, offset + 1, t, parent});
      pos = end;
    }
    std::stable_sort(groups.begin(), groups.end(), [](const Candidate& a, const Candidate& b) { return a.count > b.count; });
    if (static_cast<int64_t>(groups.size()) > branch) groups.resize(branch);
    for (auto& g : groups) {
      g.seq = seq++;
      queue.push(g);
    }
  };
  std::vector<Continuation> nodes;
  std::vector<int64_t> node_depth;
  if (depth <= 0 || max_nodes <= 0) return nodes;
  push_children(range.first, range.second, n, -1);
  while (!queue.empty() && static_cast<int64_t>(nodes.size()) < max_nodes) {
    const Candidate c = queue.top();
    queue.pop();
    const int32_t id = static_cast<int32_t>(nodes.size());
    nodes.push_back({c.token, c.parent, c.count});
    node_depth.push_back(c.parent < 0 ? 1 : node_depth[c.parent] + 1);
    if (node_depth.back() < depth) push_children(c.lo, c.hi, c.offset, id);
  }
  return nodes;
}

absl::StatusOr<NgramIndex> BuildNgramIndex(const std::string& store_path, const NgramBuildOptions& opts,
                                           int64_t* docs_used) {
  AUGUR_ASSIGN_OR_RETURN(auto store, TokenStore::Open(store_path));
  AUGUR_ASSIGN_OR_RETURN(Split split, ParseSplit(opts.split));
  const auto& docs = store->split_docs(split);
  if (docs.empty())
    return absl::InvalidArgumentError(absl::StrCat("ngram datastore: ", store_path, ": split '", opts.split, "' has no documents"));
  const int64_t limit = opts.max_tokens > 0 ? opts.max_tokens : store->split_tokens(split);
  if (limit >= (int64_t{1} << 32) - 1)
    return absl::InvalidArgumentError(absl::StrCat("ngram datastore: ", store_path, ": ", limit,
                                                   " tokens exceed the 32-bit suffix array; pass --max-tokens"));
  std::vector<int32_t> tokens;
  tokens.reserve(limit);
  int64_t used = 0;
  for (int64_t doc : docs) {
    if (static_cast<int64_t>(tokens.size()) >= limit) break;
    AUGUR_ASSIGN_OR_RETURN(std::vector<int32_t> ids, store->DocumentTokens(doc));
    const int64_t take = std::min<int64_t>(ids.size(), limit - tokens.size());
    tokens.insert(tokens.end(), ids.begin(), ids.begin() + take);
    ++used;
  }
  if (docs_used != nullptr) *docs_used = used;
  return NgramIndex::FromTokens(std::move(tokens), store->info().vocab_size);
}

NgramDrafter::NgramDrafter(std::shared_ptr<const NgramIndex> index, Options opts)
    : index_(std::move(index)), opts_(opts) {}

Draft NgramDrafter::Propose(const DraftRequest& req) {
  const int64_t gamma = req.gamma;
  Draft d;
  std::pair<int64_t, int64_t> range;
  const int64_t n = index_->LongestMatch(req.context, opts_.max_ngram, opts_.min_ngram, &range);
  if (n == 0 || gamma <= 0) return d;
  // branch 1: the most frequent next token, then the most frequent after it, ...
  for (const Continuation& c : index_->Continuations(range, n, gamma, 1, gamma)) d.tokens.push_back(c.token);
  return d;
}

Draft NgramDrafter::ProposeTree(const DraftRequest& req) {
  const int64_t gamma = req.gamma;
  Draft d;
  std::pair<int64_t, int64_t> range;
  const int64_t n = index_->LongestMatch(req.context, opts_.max_ngram, opts_.min_ngram, &range);
  if (n == 0 || gamma <= 0) return d;
  for (const Continuation& c : index_->Continuations(range, n, gamma, opts_.branch, opts_.max_nodes)) {
    d.tokens.push_back(c.token);
    d.parents.push_back(c.parent);
  }
  return d;
}

}  // namespace augur
