#include "core/eagle_head.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "core/fs.h"
#include "core/safetensors.h"

namespace augur {
namespace {

// x [...,D]: (x1, x2) -> (-x2, x1) over the two halves (transformers' rotate_half).
at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// [B,T,Hx*D] -> [B,Hx,T,D] with rotary (cos/sin [B|1,T,D]) applied when given.
at::Tensor Heads(const at::Tensor& x, int64_t heads, int64_t d, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor h = x.view({x.size(0), x.size(1), heads, d}).transpose(1, 2);
  if (cos.defined()) h = h * cos.unsqueeze(1) + RotateHalf(h) * sin.unsqueeze(1);
  return h;
}

absl::Status Bad(const std::string& where, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("eagle drafter: ", where, ": ", problem));
}

}  // namespace

EagleAttentionImpl::EagleAttentionImpl(const EagleConfig& c)
    : n_heads(c.num_attention_heads), n_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  using torch::nn::LinearOptions;
  const int64_t in = 2 * c.hidden_size;
  q_proj = register_module("q_proj", torch::nn::Linear(LinearOptions(in, n_heads * head_dim).bias(false)));
  k_proj = register_module("k_proj", torch::nn::Linear(LinearOptions(in, n_kv_heads * head_dim).bias(false)));
  v_proj = register_module("v_proj", torch::nn::Linear(LinearOptions(in, n_kv_heads * head_dim).bias(false)));
  o_proj = register_module("o_proj", torch::nn::Linear(LinearOptions(n_heads * head_dim, c.hidden_size).bias(false)));
}

EagleLayerImpl::EagleLayerImpl(const EagleConfig& c) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  hidden_norm = register_module("hidden_norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", EagleAttention(c));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", MLP(c.hidden_size, c.intermediate_size));
}

EagleHeadImpl::EagleHeadImpl(const EagleConfig& c) : cfg_(c) {
  using torch::nn::LinearOptions;
  fc = register_module("fc", torch::nn::Linear(LinearOptions(3 * c.target_hidden_size, c.hidden_size).bias(false)));
  midlayer = register_module("midlayer", EagleLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  lm_head = register_module("lm_head", torch::nn::Linear(LinearOptions(c.hidden_size, c.draft_vocab_size).bias(false)));
  const int64_t d = c.head_dim;
  inv_freq_ = 1.0 / at::pow(c.rope_theta, at::arange(0, d, 2, torch::kInt64).to(torch::kFloat32) / d);
  draft_ids_ = register_buffer("draft_ids", at::arange(c.draft_vocab_size, torch::kInt64));
  init_weights(0);
}

void EagleHeadImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : named_parameters()) {
    at::Tensor cpu = at::empty(p.value().sizes(), torch::kFloat32);
    if (p.key().find("norm") != std::string::npos) cpu.fill_(1.0);
    else cpu.normal_(0.0, 0.02, gen);
    p.value().copy_(cpu);
  }
}

void EagleHeadImpl::set_embedding(const at::Tensor& weight) {
  AUGUR_CHECK(weight.dim() == 2 && weight.size(0) == cfg_.vocab_size && weight.size(1) == cfg_.hidden_size,
              "eagle drafter: embedding ", ShapeString(weight.sizes()), " is not [", cfg_.vocab_size, ",", cfg_.hidden_size, "]");
  embed_ = weight.detach();
}

void EagleHeadImpl::set_draft_ids(const at::Tensor& ids) {
  AUGUR_CHECK(ids.dim() == 1 && ids.size(0) == cfg_.draft_vocab_size, "eagle drafter: ", ids.size(0),
              " draft ids for a head of ", cfg_.draft_vocab_size);
  draft_ids_.copy_(ids.to(torch::kInt64));
}

at::Tensor EagleHeadImpl::Embed(const at::Tensor& tokens) {
  AUGUR_CHECK(embed_.defined(), "eagle drafter: no embedding table (set_embedding with the target's)");
  const at::Tensor w = embed_.device() == device() ? embed_ : embed_.to(device());
  return at::embedding(w, tokens.to(device(), torch::kInt64));
}

at::Tensor EagleHeadImpl::Fuse(const at::Tensor& features) { return fc(features.to(device())); }

std::pair<at::Tensor, at::Tensor> EagleHeadImpl::Rotary(const at::Tensor& positions) const {
  at::Tensor pos = positions.to(fc->weight.device(), torch::kInt64);
  if (pos.dim() == 1) pos = pos.unsqueeze(0);
  const at::Tensor freqs = pos.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.to(pos.device()).view({1, 1, -1});
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

at::Tensor EagleHeadImpl::Step(const at::Tensor& tokens, const at::Tensor& g_in, const at::Tensor& positions,
                               KVCache* cache, const at::Tensor& mask_in) {
  AUGUR_CHECK(tokens.dim() == 2 && g_in.dim() == 3 && g_in.size(1) == tokens.size(1),
              "eagle drafter: tokens ", ShapeString(tokens.sizes()), " and g ", ShapeString(g_in.sizes()), " disagree");
  const int64_t b = tokens.size(0), t = tokens.size(1);
  const at::Tensor g = g_in.to(device());
  EagleLayerImpl& L = *midlayer;
  EagleAttentionImpl& A = *L.self_attn;
  const at::Tensor x = at::cat({L.input_layernorm(Embed(tokens)), L.hidden_norm(g)}, -1);
  auto [cos, sin] = Rotary(positions);
  at::Tensor q = Heads(A.q_proj(x), A.n_heads, A.head_dim, cos, sin);
  at::Tensor k = Heads(A.k_proj(x), A.n_kv_heads, A.head_dim, cos, sin);
  at::Tensor v = Heads(A.v_proj(x), A.n_kv_heads, A.head_dim, {}, {});
  const int64_t past = cache != nullptr ? cache->length() : 0;
  if (cache != nullptr) std::tie(k, v) = cache->append(0, k, v);
  at::Tensor mask = mask_in;
  if (!mask.defined() && past > 0) {
    const auto bopt = torch::TensorOptions().device(device()).dtype(torch::kBool);
    mask = at::cat({at::ones({t, past}, bopt), at::ones({t, t}, bopt).tril()}, -1).unsqueeze(0);
  }
  if (mask.defined()) {
    AUGUR_CHECK(mask.size(-1) == past + t && mask.size(-2) == t, "eagle drafter: mask ", ShapeString(mask.sizes()),
                " does not match ", t, " new and ", past, " cached positions");
    mask = mask.to(device(), torch::kBool);
    if (mask.dim() == 2) mask = mask.unsqueeze(0);
    mask = mask.unsqueeze(1);  // [B|1,1,T,S+T]
  }
  const at::Tensor att = at::scaled_dot_product_attention(
      q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, 0.0, /*is_causal=*/!mask.defined(),
      std::nullopt, /*enable_gqa=*/A.n_kv_heads != A.n_heads);
  if (cache != nullptr) cache->advance(t);
  const at::Tensor r = g + A.o_proj(att.transpose(1, 2).reshape({b, t, A.n_heads * A.head_dim}));
  return r + L.mlp(L.post_attention_layernorm(r));
}

at::Tensor EagleHeadImpl::Logits(const at::Tensor& out) { return lm_head(norm(out)).to(torch::kFloat32); }

std::vector<at::Tensor> EagleHeadImpl::Unroll(const at::Tensor& tokens_in, const at::Tensor& features,
                                              int64_t steps) {
  AUGUR_CHECK(tokens_in.dim() == 2 && features.dim() == 3 && features.size(1) == tokens_in.size(1),
              "eagle drafter: tokens ", ShapeString(tokens_in.sizes()), " and features ", ShapeString(features.sizes()), " disagree");
  AUGUR_CHECK(steps >= 1, "eagle drafter: at least one unrolled step");
  const at::Tensor tokens = tokens_in.to(device(), torch::kInt64);
  const int64_t b = tokens.size(0), len = tokens.size(1);
  EagleLayerImpl& L = *midlayer;
  EagleAttentionImpl& A = *L.self_attn;
  const int64_t group = A.n_heads / A.n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(A.head_dim));
  const auto iopt = torch::TensorOptions().device(device()).dtype(torch::kInt64);
  // Step 0's keys at s are visible to anchor t when s <= t.
  const at::Tensor hidden = at::ones({len, len}, torch::TensorOptions().device(device()).dtype(torch::kBool))
                                .triu(1);
  auto expand = [&](const at::Tensor& kv) { return group == 1 ? kv : kv.repeat_interleave(group, 1); };

  at::Tensor g = Fuse(features);
  std::vector<at::Tensor> keys, values, logits;
  for (int64_t k = 0; k < steps; ++k) {
    // The token each anchor reads at step k: tokens[t+1+k] (0 past the end).
    at::Tensor tok = at::zeros({b, len}, iopt);
    if (1 + k < len) tok.narrow(1, 0, len - 1 - k).copy_(tokens.narrow(1, 1 + k, len - 1 - k));
    const at::Tensor x = at::cat({L.input_layernorm(Embed(tok)), L.hidden_norm(g)}, -1);
    auto [cos, sin] = Rotary(at::arange(k, k + len, iopt));
    const at::Tensor q = Heads(A.q_proj(x), A.n_heads, A.head_dim, cos, sin);  // [B,H,L,D]
    keys.push_back(expand(Heads(A.k_proj(x), A.n_kv_heads, A.head_dim, cos, sin)));
    values.push_back(expand(Heads(A.v_proj(x), A.n_kv_heads, A.head_dim, {}, {})));
    std::vector<at::Tensor> scores = {
        at::matmul(q, keys[0].transpose(-1, -2)).mul(scale).masked_fill(hidden, -std::numeric_limits<float>::infinity())};
    for (int64_t j = 1; j <= k; ++j) scores.push_back((q * keys[j]).sum(-1, /*keepdim=*/true).mul(scale));
    const at::Tensor p = at::softmax(at::cat(scores, -1), -1);  // [B,H,L,L+k]
    at::Tensor att = at::matmul(p.narrow(-1, 0, len), values[0]);
    for (int64_t j = 1; j <= k; ++j) att = att + p.narrow(-1, len + j - 1, 1) * values[j];
    const at::Tensor r = g + A.o_proj(att.transpose(1, 2).reshape({b, len, A.n_heads * A.head_dim}));
    const at::Tensor out = r + L.mlp(L.post_attention_layernorm(r));
    logits.push_back(Logits(out));
    g = out;
  }
  return logits;
}

KVCache NewEagleCache(const EagleHeadImpl& head, int64_t capacity) {
  return KVCache(head.config().LayerConfig(), 1, capacity, head.fc->weight.device(), head.fc->weight.scalar_type());
}

// ---- checkpoints ---------------------------------------------------------------------------

NamedTensors EagleTensors(EagleHeadImpl& head, torch::Dtype dtype) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  for (const auto& p : head.named_parameters(/*recurse=*/true))
    out.emplace_back(p.key(), p.value().detach().to(torch::kCPU, dtype).contiguous());
  const at::Tensor ids = head.draft_ids().to(torch::kCPU);
  const int64_t nd = ids.size(0);
  out.emplace_back("d2t", (ids - at::arange(nd, torch::kInt64)).contiguous());
  at::Tensor t2d = at::zeros({head.config().vocab_size}, torch::kBool);
  t2d.index_fill_(0, ids, true);
  out.emplace_back("t2d", t2d);
  return out;
}

absl::Status SaveEagleHead(EagleHeadImpl& head, const AugurMeta& meta, const std::string& dir, torch::Dtype dtype) {
  if (FileExists(dir) && !IsDirectory(dir)) return Bad(dir, "exists and is a file, not a directory");
  AUGUR_RETURN_IF_ERROR(MakeDirs(dir));
  AUGUR_RETURN_IF_ERROR(WriteSafetensorsCheckpoint(dir, EagleTensors(head, dtype), 0));
  EagleConfig cfg = head.config();
  cfg.torch_dtype = dtype == torch::kFloat32 ? "float32" : dtype == torch::kBFloat16 ? "bfloat16" : "float16";
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "config.json"), cfg.ToJson().dump(2) + "\n"));
  AugurMeta m = meta;
  m.kind = kKindEagleDrafter;
  return WriteFileAtomic(JoinPath(dir, "augur.json"), m.ToJson().dump(2) + "\n");
}

absl::StatusOr<LoadedEagle> LoadEagleHead(const std::string& dir, torch::Device device) {
  if (!IsDirectory(dir))
    return FileExists(dir) ? Bad(dir, "is a file; expected an eagle-drafter directory")
                           : absl::NotFoundError(absl::StrCat("eagle drafter: ", dir, ": no such directory"));
  AUGUR_ASSIGN_OR_RETURN(AugurMeta meta, ReadAugurMeta(dir));
  if (FileExists(JoinPath(dir, "augur.json")) && meta.kind != kKindEagleDrafter)
    return Bad(dir, absl::StrCat("is a ", meta.kind, " checkpoint, not an ", kKindEagleDrafter));
  AUGUR_ASSIGN_OR_RETURN(EagleConfig cfg, EagleConfig::FromFile(JoinPath(dir, "config.json")));
  AUGUR_ASSIGN_OR_RETURN(SafetensorsCheckpoint st, SafetensorsCheckpoint::Open(dir));
  EagleHead head(cfg);
  torch::NoGradGuard no_grad;
  std::set<std::string> seen;
  for (auto& p : head->named_parameters(/*recurse=*/true)) {
    const StTensorInfo* info = st.Find(p.key());
    if (info == nullptr) return Bad(dir, absl::StrCat("has no tensor ", p.key()));
    if (info->shape != p.value().sizes().vec())
      return Bad(dir, absl::StrCat("tensor ", p.key(), " is ", ShapeString(info->shape), ", config.json says ",
                                   ShapeString(p.value().sizes())));
    AUGUR_ASSIGN_OR_RETURN(at::Tensor t, st.Read(p.key()));
    if (!at::isFloatingType(t.scalar_type()))
      return Bad(dir, absl::StrCat("tensor ", p.key(), " is ", StDtypeName(info->dtype), ", not a float type"));
    p.value().copy_(t.to(torch::kFloat32));
    seen.insert(p.key());
  }
  const int64_t nd = cfg.draft_vocab_size, v = cfg.vocab_size;
  at::Tensor ids = at::arange(nd, torch::kInt64);
  if (const StTensorInfo* info = st.Find("d2t")) {
    if (info->shape != std::vector<int64_t>{nd} || (info->dtype != StDtype::kI64 && info->dtype != StDtype::kI32))
      return Bad(dir, absl::StrCat("d2t is ", StDtypeName(info->dtype), " ", ShapeString(info->shape),
                                   "; expected I64 [", nd, "]"));
    AUGUR_ASSIGN_OR_RETURN(at::Tensor d2t, st.Read("d2t"));
    ids = ids + d2t.to(torch::kInt64);
    seen.insert("d2t");
  } else if (nd != v) {
    return Bad(dir, absl::StrCat("has a head of ", nd, " draft ids but no d2t to map them to the target's ", v));
  }
  if (nd > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= v))
    return Bad(dir, absl::StrCat("d2t maps a draft id outside the target vocabulary [0, ", v, ")"));
  if (std::get<0>(at::_unique(ids)).size(0) != nd) return Bad(dir, "d2t maps two draft ids to one target id");
  if (const StTensorInfo* info = st.Find("t2d")) {
    if (info->shape != std::vector<int64_t>{v})
      return Bad(dir, absl::StrCat("t2d is ", ShapeString(info->shape), "; expected [", v, "]"));
    AUGUR_ASSIGN_OR_RETURN(at::Tensor t2d, st.Read("t2d"));
    t2d = t2d.ne(0);
    if (t2d.sum().item<int64_t>() != nd || !t2d.index_select(0, ids).all().item<bool>())
      return Bad(dir, "t2d does not mark exactly the target ids that d2t maps to");
    seen.insert("t2d");
  }
  // Some drafters carry their own embedding (EAGLE-3 for Llama-3.3-70B); augur's share the
  // target's and leave it out.
  if (const StTensorInfo* info = st.Find("embed_tokens.weight")) {
    if (info->shape != std::vector<int64_t>{v, cfg.hidden_size})
      return Bad(dir, absl::StrCat("embed_tokens.weight is ", ShapeString(info->shape), "; expected [", v, ",",
                                   cfg.hidden_size, "]"));
    AUGUR_ASSIGN_OR_RETURN(at::Tensor e, st.Read("embed_tokens.weight"));
    head->set_embedding(e.to(torch::kFloat32).to(device));
    seen.insert("embed_tokens.weight");
  }
  for (const std::string& name : st.names())
    if (!seen.count(name)) return Bad(dir, absl::StrCat("has an unexpected tensor ", name));
  head->set_draft_ids(ids);
  head->to(device);
  head->eval();
  return LoadedEagle{head, meta, dir};
}

}  // namespace augur
