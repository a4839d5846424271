#include "distill/eagle_features.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>

#include <absl/strings/str_join.h>

#include "core/fs.h"
#include "core/h5.h"
#include "core/hash.h"
#include "core/model.h"
#include "core/progress.h"

namespace augur::distill {
namespace {

constexpr int64_t kChunkRows = 64;

std::string LayersString(const std::vector<int64_t>& layers) {
  std::string s;
  for (size_t i = 0; i < layers.size(); ++i) absl::StrAppend(&s, i ? "," : "", layers[i]);
  return s;
}

absl::Status Bad(const std::string& path, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("--cache-features ", path, ": ", problem));
}

}  // namespace

struct FeatureCache::Impl {
  h5::File file;
  h5::Dataset taps, topk_ids, topk_logp, greedy;
  std::vector<int64_t> offsets;  // S + 1
};

FeatureCache::~FeatureCache() = default;

absl::StatusOr<std::string> TeacherTokensHash(const TeacherStore& store) {
  uint64_t h = SplitMix64(0x6561676c65666561ULL ^ static_cast<uint64_t>(store.num_sequences()));
  for (int64_t s = 0; s < store.num_sequences(); ++s) {
    AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store.Read(s));
    h = SplitMix64(h ^ static_cast<uint64_t>(seq.prompt_len) ^ (static_cast<uint64_t>(seq.length()) << 32));
    for (int32_t t : seq.tokens) h = SplitMix64(h ^ static_cast<uint32_t>(t));
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf);
}

absl::StatusOr<std::unique_ptr<FeatureCache>> FeatureCache::Open(const std::string& path, const FeatureCacheKey& key,
                                                                 const TeacherStore& store) {
  auto opened = h5::File::Open(path);
  if (!opened.ok()) return Bad(path, std::string(opened.status().message()));
  auto impl = std::make_unique<Impl>();
  impl->file = std::move(*opened);
  const hid_t root = impl->file.id();
  auto attr = [&](const char* name) -> absl::StatusOr<std::string> {
    auto v = h5::ReadAttrString(root, name);
    if (!v.ok()) return Bad(path, absl::StrCat("not an augur EAGLE feature cache (no attribute ", name, ")"));
    return *v;
  };
  auto attr_int = [&](const char* name) -> absl::StatusOr<int64_t> {
    auto v = h5::ReadAttrInt(root, name);
    if (!v.ok()) return Bad(path, absl::StrCat("not an augur EAGLE feature cache (no attribute ", name, ")"));
    return *v;
  };
  AUGUR_ASSIGN_OR_RETURN(std::string format, attr("format"));
  if (format != kEagleFeaturesFormat) return Bad(path, absl::StrCat("format is '", format, "', not ", kEagleFeaturesFormat));
  AUGUR_ASSIGN_OR_RETURN(int64_t version, attr_int("version"));
  if (version != kEagleFeaturesVersion)
    return Bad(path, absl::StrCat("version ", version, ", this augur reads version ", kEagleFeaturesVersion));
  // What it was made from, each against this run's; the message says what to do.
  const std::string redo = "; remove it to rebuild it for this run";
  AUGUR_ASSIGN_OR_RETURN(std::string target_fp, attr("target_fingerprint"));
  if (target_fp != key.target_fingerprint) return Bad(path, "was made with another target (fingerprint differs)" + redo);
  AUGUR_ASSIGN_OR_RETURN(std::string teacher, attr("teacher_hash"));
  if (teacher != key.teacher_hash) return Bad(path, "was made from another teacher store (its tokens differ)" + redo);
  AUGUR_ASSIGN_OR_RETURN(std::string layers, attr("layers"));
  if (layers != LayersString(key.layers))
    return Bad(path, absl::StrCat("holds layers ", layers, ", this run reads ", LayersString(key.layers), redo));
  AUGUR_ASSIGN_OR_RETURN(int64_t k, attr_int("top_k"));
  if (k != key.top_k) return Bad(path, absl::StrCat("holds the top ", k, ", this run asks for --cache-topk ", key.top_k, redo));

  // Shapes: every dataset has the store's positions as rows; the offsets are the store's.
  const int64_t S = store.num_sequences(), N = store.num_positions();
  struct Want {
    h5::Dataset* ds;
    const char* name;
    h5::DType dtype;
    std::vector<int64_t> shape;
  };
  const Want want[] = {{&impl->taps, "taps", h5::DType::kF16, {N, 3 * key.hidden}},
                       {&impl->topk_ids, "topk_ids", h5::DType::kI32, {N, k}},
                       {&impl->topk_logp, "topk_logprobs", h5::DType::kF32, {N, k}},
                       {&impl->greedy, "greedy", h5::DType::kI32, {N}}};
  for (const Want& w : want) {
    auto ds = h5::Dataset::Open(root, w.name, w.ds == &impl->taps ? (size_t{64} << 20) : 0);
    if (!ds.ok()) return Bad(path, std::string(ds.status().message()));
    if (ds->dtype() != w.dtype || ds->shape() != w.shape)
      return Bad(path, absl::StrCat("/", w.name, " is ", h5::DTypeName(ds->dtype()), " of shape [",
                                    absl::StrJoin(ds->shape(), ","), "], expected ", h5::DTypeName(w.dtype), " [",
                                    absl::StrJoin(w.shape, ","), "]"));
    *w.ds = std::move(*ds);
  }
  auto off = h5::Dataset::Open(root, "offsets");
  if (!off.ok()) return Bad(path, std::string(off.status().message()));
  if (off->shape() != std::vector<int64_t>{S + 1}) return Bad(path, "/offsets does not have one row per teacher sequence + 1");
  AUGUR_ASSIGN_OR_RETURN(impl->offsets, off->ReadAll<int64_t>());
  for (int64_t s = 0; s < S; ++s)
    if (impl->offsets[s] != store.sequence_offset(s) || impl->offsets[s + 1] - impl->offsets[s] != store.sequence_length(s))
      return Bad(path, absl::StrCat("/offsets row ", s, " disagrees with the teacher store", redo));
  if (impl->offsets[S] != N) return Bad(path, "/offsets does not end at the store's position count");

  auto cache = std::unique_ptr<FeatureCache>(new FeatureCache());
  cache->path_ = path;
  cache->key_ = key;
  cache->key_.top_k = k;
  cache->impl_ = std::move(impl);
  return cache;
}

absl::StatusOr<std::unique_ptr<FeatureCache>> FeatureCache::OpenOrBuild(const std::string& path,
                                                                        const FeatureCacheKey& key,
                                                                        const TeacherStore& store,
                                                                        LlamaModelImpl& target, bool progress) {
  if (FileExists(path)) return Open(path, key, store);
  if (key.top_k < 1 || key.top_k > key.vocab)
    return Bad(path, absl::StrCat("--cache-topk ", key.top_k, " must be in [1, ", key.vocab, "]"));
  const std::string tmp = TempPathFor(path);
  {
    auto created = h5::File::Create(tmp);
    if (!created.ok()) return Bad(path, std::string(created.status().message()));
    h5::File file = std::move(*created);
    const hid_t root = file.id();
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "format", kEagleFeaturesFormat));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "version", kEagleFeaturesVersion));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "target_fingerprint", key.target_fingerprint));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "teacher_hash", key.teacher_hash));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "teacher", store.path()));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "layers", LayersString(key.layers)));
    AUGUR_RETURN_IF_ERROR(h5::WriteAttr(root, "top_k", key.top_k));
    AUGUR_ASSIGN_OR_RETURN(h5::Dataset taps, h5::Dataset::CreateExtendible(root, "taps", h5::DType::kF16,
                                                                           {3 * key.hidden}, kChunkRows, 0));
    AUGUR_ASSIGN_OR_RETURN(h5::Dataset ids, h5::Dataset::CreateExtendible(root, "topk_ids", h5::DType::kI32,
                                                                          {key.top_k}, kChunkRows, 0));
    AUGUR_ASSIGN_OR_RETURN(h5::Dataset logp, h5::Dataset::CreateExtendible(root, "topk_logprobs", h5::DType::kF32,
                                                                           {key.top_k}, kChunkRows, 0));
    AUGUR_ASSIGN_OR_RETURN(h5::Dataset greedy,
                           h5::Dataset::CreateExtendible(root, "greedy", h5::DType::kI32, {}, kChunkRows * 16, 0));
    std::vector<int64_t> offsets = {0};
    torch::NoGradGuard no_grad;
    Progress bar("eagle features", store.num_sequences(), "seq");
    ForwardOptions fo;
    fo.hidden_layers = key.layers;
    for (int64_t s = 0; s < store.num_sequences(); ++s) {
      AUGUR_ASSIGN_OR_RETURN(TeacherSequence seq, store.Read(s));
      const int64_t L = seq.length();
      const at::Tensor x = torch::tensor(std::vector<int64_t>(seq.tokens.begin(), seq.tokens.end()), torch::kInt64)
                               .reshape({1, L})
                               .to(target.device());
      ForwardOutput out = target.forward(x, nullptr, fo);
      const at::Tensor t = at::cat(out.hidden, -1)[0].to(torch::kCPU, torch::kHalf).contiguous();
      const at::Tensor logits = out.logits[0].to(torch::kCPU, torch::kFloat32);
      const auto top = at::log_softmax(logits, -1).topk(key.top_k, -1);
      const at::Tensor tid = std::get<1>(top).to(torch::kInt32).contiguous();
      const at::Tensor tlp = std::get<0>(top).contiguous();
      const at::Tensor g = logits.argmax(-1).to(torch::kInt32).contiguous();
      AUGUR_RETURN_IF_ERROR(taps.Append(t.data_ptr(), L, h5::DType::kF16));
      AUGUR_RETURN_IF_ERROR(ids.Append(tid.data_ptr(), L, h5::DType::kI32));
      AUGUR_RETURN_IF_ERROR(logp.Append(tlp.data_ptr(), L, h5::DType::kF32));
      AUGUR_RETURN_IF_ERROR(greedy.Append(g.data_ptr(), L, h5::DType::kI32));
      offsets.push_back(offsets.back() + L);
      if (progress) bar.update(s + 1);
    }
    AUGUR_RETURN_IF_ERROR(h5::Dataset::CreateFixed(root, "offsets", h5::DType::kI64,
                                                   {static_cast<int64_t>(offsets.size())}, offsets.data())
                              .status());
    if (progress) bar.finish(absl::StrCat(offsets.back(), " positions"));
    AUGUR_RETURN_IF_ERROR(file.Close());
  }
  AUGUR_RETURN_IF_ERROR(CommitTempFile(tmp, path));
  return Open(path, key, store);
}

absl::StatusOr<FeatureRows> FeatureCache::Read(int64_t s, int64_t begin, int64_t count) const {
  const int64_t S = static_cast<int64_t>(impl_->offsets.size()) - 1;
  if (s < 0 || s >= S) return Bad(path_, absl::StrCat("sequence ", s, " out of range [0, ", S, ")"));
  const int64_t L = impl_->offsets[s + 1] - impl_->offsets[s];
  if (begin < 0 || count < 0 || begin + count > L)
    return Bad(path_, absl::StrCat("rows [", begin, ", ", begin + count, ") outside sequence ", s, " of ", L));
  const int64_t row = impl_->offsets[s] + begin, k = key_.top_k, w = 3 * key_.hidden;
  at::Tensor half = at::empty({count, w}, torch::kHalf);
  FeatureRows r;
  r.topk_ids = at::empty({count, k}, torch::kInt32);
  r.topk_logp = at::empty({count, k}, torch::kFloat32);
  r.greedy = at::empty({count}, torch::kInt32);
  AUGUR_RETURN_IF_ERROR(impl_->taps.ReadRows(row, count, h5::DType::kF16, half.data_ptr()));
  AUGUR_RETURN_IF_ERROR(impl_->topk_ids.ReadRows(row, count, h5::DType::kI32, r.topk_ids.data_ptr()));
  AUGUR_RETURN_IF_ERROR(impl_->topk_logp.ReadRows(row, count, h5::DType::kF32, r.topk_logp.data_ptr()));
  AUGUR_RETURN_IF_ERROR(impl_->greedy.ReadRows(row, count, h5::DType::kI32, r.greedy.data_ptr()));
  // Ids index the draft vocabulary map: a corrupt file must not index out of it.
  const auto bad = [&](const at::Tensor& t) {
    return t.numel() > 0 && (t.min().item<int64_t>() < 0 || t.max().item<int64_t>() >= key_.vocab);
  };
  if (bad(r.topk_ids) || bad(r.greedy))
    return Bad(path_, absl::StrCat("sequence ", s, " holds token ids outside the vocabulary of ", key_.vocab));
  r.taps = half.to(torch::kFloat32);
  // log-probs may be -inf (a token of probability 0), never NaN or +inf; taps are finite.
  if (at::isnan(r.topk_logp).any().item<bool>() || (r.topk_logp > 0.01).any().item<bool>() ||
      !at::isfinite(r.taps).all().item<bool>())
    return Bad(path_, absl::StrCat("sequence ", s, " holds non-finite or impossible values"));
  r.topk_ids = r.topk_ids.to(torch::kInt64);
  r.greedy = r.greedy.to(torch::kInt64);
  return r;
}

}  // namespace augur::distill
