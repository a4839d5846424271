#include "core/model.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>

namespace augur {
namespace {

// x [...,D]: (x1, x2) -> (-x2, x1) over the two halves, as transformers' rotate_half.
at::Tensor RotateHalf(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

at::Tensor Project(torch::nn::Linear& linear, const LinearBackendPtr& backend, const at::Tensor& x) {
  return backend ? backend->forward(x) : linear(x);
}

}  // namespace

// ---- KV cache ---------------------------------------------------------------

KVCache::KVCache(const ModelConfig& cfg, int64_t batch, int64_t capacity, torch::Device device,
                 torch::Dtype dtype)
    : capacity_(capacity), batch_(batch) {
  const auto opts = torch::TensorOptions().device(device).dtype(dtype);
  const int64_t d = cfg.head_dim_or_default();
  layers_.reserve(cfg.num_hidden_layers);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i)
    layers_.emplace_back(at::zeros({batch, cfg.num_key_value_heads, capacity, d}, opts),
                         at::zeros({batch, cfg.num_key_value_heads, capacity, d}, opts));
}

void KVCache::truncate(int64_t new_length) {
  TORCH_CHECK(new_length >= 0 && new_length <= length_, "KVCache::truncate: length ", new_length,
              " outside [0, ", length_, "]");
  length_ = new_length;
}

void KVCache::compact(int64_t prefix, const at::Tensor& keep) {
  TORCH_CHECK(prefix >= 0 && prefix <= length_, "KVCache::compact: prefix ", prefix, " > length ", length_);
  const int64_t n = keep.numel();
  TORCH_CHECK(prefix + n <= length_, "KVCache::compact: keeping ", n, " entries after ", prefix,
              " exceeds length ", length_);
  if (n > 0) {
    const at::Tensor idx = keep.to(torch::kInt64).to(layers_.front().first.device());
    for (auto& [k, v] : layers_) {
      // index_select copies first, so overlapping source and destination are safe.
      k.narrow(2, prefix, n).copy_(k.index_select(2, idx));
      v.narrow(2, prefix, n).copy_(v.index_select(2, idx));
    }
  }
  length_ = prefix + n;
}

std::pair<at::Tensor, at::Tensor> KVCache::append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  const int64_t t = k.size(2);
  TORCH_CHECK(length_ + t <= capacity_, "KV cache full: ", length_, " cached + ", t, " new tokens > capacity ",
              capacity_, " (raise the cache capacity / max_position_embeddings or shorten the request)");
  TORCH_CHECK(k.size(0) == batch_, "KV cache batch ", batch_, " but input batch ", k.size(0));
  auto& [kc, vc] = layers_.at(layer);
  kc.narrow(2, length_, t).copy_(k);
  vc.narrow(2, length_, t).copy_(v);
  return {kc.narrow(2, 0, length_ + t), vc.narrow(2, 0, length_ + t)};
}

// ---- layers -------------------------------------------------------------------

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  // Normalise in float32 whatever the activation dtype, as transformers does.
  const at::Tensor xf = x.to(torch::kFloat32);
  const at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * y.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const ModelConfig& cfg, int64_t layer)
    : n_heads(cfg.num_attention_heads), n_kv_heads(cfg.num_key_value_heads),
      head_dim(cfg.head_dim_or_default()), layer_index(layer) {
  using torch::nn::LinearOptions;
  const int64_t c = cfg.hidden_size;
  q_proj = register_module("q_proj", torch::nn::Linear(LinearOptions(c, n_heads * head_dim).bias(cfg.attention_bias)));
  k_proj = register_module("k_proj", torch::nn::Linear(LinearOptions(c, n_kv_heads * head_dim).bias(cfg.attention_bias)));
  v_proj = register_module("v_proj", torch::nn::Linear(LinearOptions(c, n_kv_heads * head_dim).bias(cfg.attention_bias)));
  // transformers' Llama puts the bias on o_proj too; Qwen2 only on q/k/v.
  const bool o_bias = cfg.o_proj_bias();
  o_proj = register_module("o_proj", torch::nn::Linear(LinearOptions(n_heads * head_dim, c).bias(o_bias)));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& mask, KVCache* cache) {
  const int64_t b = x.size(0), t = x.size(1);
  at::Tensor q = Project(q_proj, q_backend, x).view({b, t, n_heads, head_dim}).transpose(1, 2);
  at::Tensor k = Project(k_proj, k_backend, x).view({b, t, n_kv_heads, head_dim}).transpose(1, 2);
  at::Tensor v = Project(v_proj, v_backend, x).view({b, t, n_kv_heads, head_dim}).transpose(1, 2);
  const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [B|1,1,T,D]
  q = q * c + RotateHalf(q) * s;
  k = k * c + RotateHalf(k) * s;
  if (cache != nullptr) std::tie(k, v) = cache->append(layer_index, k, v);
  // Without a mask and without a prefix this is plain causal attention: let SDPA pick its
  // fused causal kernel. Otherwise the boolean mask [B|1,1,T,S+T] says who sees whom.
  const bool causal = !mask.defined();
  const at::Tensor out = at::scaled_dot_product_attention(
      q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt, 0.0, causal,
      std::nullopt, /*enable_gqa=*/n_kv_heads != n_heads);
  return Project(o_proj, o_backend, out.transpose(1, 2).reshape({b, t, n_heads * head_dim}));
}

MLPImpl::MLPImpl(int64_t hidden, int64_t inter) {
  using torch::nn::LinearOptions;
  gate_proj = register_module("gate_proj", torch::nn::Linear(LinearOptions(hidden, inter).bias(false)));
  up_proj = register_module("up_proj", torch::nn::Linear(LinearOptions(hidden, inter).bias(false)));
  down_proj = register_module("down_proj", torch::nn::Linear(LinearOptions(inter, hidden).bias(false)));
}

at::Tensor MLPImpl::forward(const at::Tensor& x) {
  return Project(down_proj, down_backend,
                 at::silu(Project(gate_proj, gate_backend, x)) * Project(up_proj, up_backend, x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& cfg, int64_t layer) {
  self_attn = register_module("self_attn", Attention(cfg, layer));
  mlp = register_module("mlp", MLP(cfg.hidden_size, cfg.intermediate_size));
  input_layernorm = register_module("input_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& mask, KVCache* cache) {
  const at::Tensor h = x + self_attn(input_layernorm(x), cos, sin, mask, cache);
  return h + mlp(post_attention_layernorm(h));
}

DecoderStackImpl::DecoderStackImpl(const ModelConfig& cfg) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(cfg.vocab_size, cfg.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) layers->push_back(DecoderLayer(cfg, i));
  norm = register_module("norm", RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
}

// ---- model --------------------------------------------------------------------

LlamaModelImpl::LlamaModelImpl(const ModelConfig& cfg) : cfg_(cfg) {
  model = register_module("model", DecoderStack(cfg));
  if (!cfg.tie_word_embeddings)
    lm_head = register_module("lm_head", torch::nn::Linear(torch::nn::LinearOptions(cfg.hidden_size, cfg.vocab_size).bias(false)));
  const int64_t d = cfg.head_dim_or_default();
  // Same expression as transformers: 1 / theta^(arange(0, D, 2) / D), in float32.
  inv_freq_ = 1.0 / at::pow(cfg.rope_theta, at::arange(0, d, 2, torch::kInt64).to(torch::kFloat32) / d);
  init_weights(0);
}

torch::Device LlamaModelImpl::device() const { return model->embed_tokens->weight.device(); }
torch::Dtype LlamaModelImpl::dtype() const { return model->embed_tokens->weight.scalar_type(); }

void LlamaModelImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : named_parameters()) {
    at::Tensor cpu = at::empty(p.value().sizes(), torch::kFloat32);
    const std::string& name = p.key();
    const bool is_norm = name.find("norm") != std::string::npos;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) cpu.fill_(1.0);
    else if (is_bias) cpu.zero_();
    else cpu.normal_(0.0, 0.02, gen);
    p.value().copy_(cpu);
  }
}

KVCache LlamaModelImpl::new_cache(int64_t batch, int64_t capacity) const {
  return KVCache(cfg_, batch, capacity, device(), dtype());
}

at::Tensor LlamaModelImpl::output_weight() const {
  return cfg_.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

ForwardOutput LlamaModelImpl::forward(const at::Tensor& ids, KVCache* cache, const ForwardOptions& opts) {
  TORCH_CHECK(ids.dim() == 2, "model: ids must be [B,T], got ", ids.sizes());
  const int64_t t = ids.size(1);
  const int64_t past = cache != nullptr ? cache->length() : 0;
  const auto dev = device();
  const at::Tensor ids_d = ids.to(dev, torch::kInt64);

  at::Tensor pos = opts.positions.defined() ? opts.positions.to(dev, torch::kInt64)
                                            : at::arange(past, past + t, torch::TensorOptions().device(dev).dtype(torch::kInt64));
  if (pos.dim() == 1) pos = pos.unsqueeze(0);  // [1|B, T]
  TORCH_CHECK(pos.size(-1) == t, "model: positions ", pos.sizes(), " do not match ", t, " tokens");

  // Rotary tables in float32, cast to the activation dtype (transformers does the same).
  const at::Tensor freqs = pos.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.to(dev).view({1, 1, -1});
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  const at::Tensor cos = emb.cos().to(dtype()), sin = emb.sin().to(dtype());

  // Attention mask [B|1,1,T,S+T]: the prefix is visible, the new tokens see each other by
  // opts.attn_mask (default causal). Left undefined for a plain causal pass without cache,
  // so SDPA can use its fused causal path.
  at::Tensor mask;
  const bool windowed = cfg_.sliding_window > 0 && past + t > cfg_.sliding_window;
  if (opts.attn_mask.defined() || past > 0 || windowed || opts.prefix_mask.defined()) {
    const auto bopt = torch::TensorOptions().device(dev).dtype(torch::kBool);
    at::Tensor local = opts.attn_mask.defined() ? opts.attn_mask.to(dev, torch::kBool)
                                                : at::ones({t, t}, bopt).tril();
    if (local.dim() == 2) local = local.unsqueeze(0);
    TORCH_CHECK(local.size(-1) == t && local.size(-2) == t, "model: attn_mask ", opts.attn_mask.sizes(),
                " does not match ", t, " new tokens");
    at::Tensor prefix = at::ones({local.size(0), t, past}, bopt);
    if (opts.prefix_mask.defined()) {
      TORCH_CHECK(opts.prefix_mask.dim() == 2 && opts.prefix_mask.size(1) == past, "model: prefix_mask ",
                  opts.prefix_mask.sizes(), " does not match ", past, " cached positions");
      const int64_t b = opts.prefix_mask.size(0);
      prefix = opts.prefix_mask.to(dev, torch::kBool).unsqueeze(1).expand({b, t, past});
      if (local.size(0) != b) local = local.expand({b, t, t});
    }
    mask = at::cat({prefix, local}, -1);
    if (windowed) {
      // Mistral: query at position p sees keys at positions > p - window.
      const at::Tensor kpos = at::arange(past + t, torch::TensorOptions().device(dev).dtype(torch::kInt64));
      const at::Tensor qpos = at::arange(past, past + t, kpos.options()).unsqueeze(-1);
      mask = mask & (kpos.unsqueeze(0) > qpos - cfg_.sliding_window).unsqueeze(0);
    }
    mask = mask.unsqueeze(1);
  }

  ForwardOutput out;
  const int64_t n_layers = cfg_.num_hidden_layers;
  for (int64_t l : opts.hidden_layers)
    AUGUR_CHECK(l >= 0 && l <= n_layers, "model: hidden layer ", l, " outside [0, ", n_layers, "]");
  auto want = [&](int64_t layer) {
    for (int64_t l : opts.hidden_layers)
      if (l == layer) return true;
    return false;
  };
  std::vector<at::Tensor> taps(static_cast<size_t>(n_layers + 1));  // by layer
  at::Tensor h = model->embed_tokens(ids_d);
  if (want(0)) taps[0] = h;
  for (int64_t i = 0; i < n_layers; ++i) {
    h = model->layers->ptr<DecoderLayerImpl>(i)->forward(h, cos, sin, mask, cache);
    if (want(i + 1) && i + 1 < n_layers) taps[i + 1] = h;
  }
  h = model->norm(h);
  if (want(n_layers)) taps[n_layers] = h;
  for (int64_t l : opts.hidden_layers) out.hidden.push_back(taps[l]);  // in the order asked
  if (cache != nullptr) cache->advance(t);
  if (opts.logits_last > 0 && opts.logits_last < t) h = h.narrow(1, t - opts.logits_last, opts.logits_last);
  out.logits = (head_backend ? head_backend->forward(h) : at::linear(h, output_weight())).to(torch::kFloat32);
  return out;
}

at::Tensor LlamaModelImpl::logits(const at::Tensor& ids) { return forward(ids).logits; }

}  // namespace augur
