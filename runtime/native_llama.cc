#include "runtime/native_llama.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/kernels/kernels_f32.h"
#include "runtime/qlinear.h"
#include "runtime/qmodel.h"

namespace augur {
namespace {

std::vector<float> ToVector(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

// ---- construction --------------------------------------------------------------------------

NativeLlama::NativeLlama(const ModelConfig& cfg, int64_t capacity)
    : cfg_(cfg), capacity_(capacity), hidden_(cfg.hidden_size), heads_(cfg.num_attention_heads),
      kv_heads_(cfg.num_key_value_heads), head_dim_(cfg.head_dim_or_default()), inter_(cfg.intermediate_size),
      vocab_(cfg.vocab_size), head_rows_(cfg.vocab_size) {}

namespace {

// One linear of a LlamaModel as plain weights: fp32, or the packed weight of its
// QuantLinearBackend.
absl::StatusOr<LinearWeights> SlotWeights(const std::string& name, const at::Tensor& weight, const at::Tensor& bias,
                                          const LinearBackendPtr& backend) {
  LinearWeights l;
  l.out = weight.size(0);
  l.in = weight.size(1);
  if (bias.defined()) l.bias = ToVector(bias);
  if (!backend) {
    l.weight = ToVector(weight);
    return l;
  }
  const auto* q = dynamic_cast<const QuantLinearBackend*>(backend.get());
  if (q == nullptr)
    return absl::UnimplementedError(absl::StrCat("native runtime: ", name,
                                                 " runs through a backend it does not know (not a packed int8/int4 "
                                                 "weight, e.g. QAT fake-quant); use engine=torch"));
  const QuantizedWeight& w = q->weight();
  if (!w.qweight.is_cpu())
    return absl::FailedPreconditionError(absl::StrCat("native runtime: ", name, ": packed weight is on ",
                                                      w.qweight.device().str(), ", not the CPU"));
  l.packed = w;
  return l;
}

}  // namespace

absl::StatusOr<NativeLlama::Linear> NativeLlama::MakeLinear(const std::string& name, LinearWeights&& src) {
  Linear l;
  l.out = src.out;
  l.in = src.in;
  l.bias = std::move(src.bias);
  if (!l.bias.empty() && static_cast<int64_t>(l.bias.size()) != l.out)
    return absl::InvalidArgumentError(absl::StrCat("native runtime: ", name, ": bias of ", l.bias.size(), " for ",
                                                   l.out, " outputs"));
  if (!src.quantized()) {
    if (static_cast<int64_t>(src.weight.size()) != l.out * l.in)
      return absl::InvalidArgumentError(absl::StrCat("native runtime: ", name, ": ", src.weight.size(),
                                                     " weights for [", l.out, ", ", l.in, "]"));
    l.weight = std::move(src.weight);
    return l;
  }
  const QuantizedWeight& w = src.packed;
  if (w.out != l.out || w.in != l.in || (w.scheme.bits != 8 && w.scheme.bits != 4))
    return absl::FailedPreconditionError(absl::StrCat("native runtime: ", name, ": packed weight [", w.out, ", ", w.in,
                                                      "] int", w.scheme.bits, " does not match the linear [", l.out,
                                                      ", ", l.in, "]"));
  AUGUR_RETURN_IF_ERROR(ValidateQuantized(w, absl::StrCat("native runtime: ", name)));
  l.packed = w;
  l.packed.qweight = w.qweight.contiguous();
  l.packed.scales = w.scales.to(at::kFloat).contiguous();
  if (w.zeros.defined()) l.packed.zeros = w.zeros.contiguous();
  l.bits = w.scheme.bits;
  if (l.bits == 8) {
    l.w8 = {l.packed.qweight.data_ptr<int8_t>(), l.packed.scales.data_ptr<float>(), l.out, l.in};
  } else {
    l.w4 = {l.packed.qweight.data_ptr<uint8_t>(), l.packed.scales.data_ptr<float>(),
            l.packed.zeros.data_ptr<uint8_t>(), l.out, l.in, l.packed.in_padded(), w.scheme.group};
  }
  return l;
}

absl::StatusOr<std::unique_ptr<NativeLlama>> NativeLlama::Create(LlamaModel model, int64_t capacity) {
  const ModelConfig& cfg = model->config();
  if (!model->device().is_cpu())
    return absl::FailedPreconditionError(absl::StrCat("native runtime: the model is on ", model->device().str(),
                                                      "; it runs CPU models only (engine=torch runs the others)"));
  // Parameters as float32 whatever the model's dtype (the runtime computes in fp32).
  LlamaWeights w;
  w.config = cfg;
  w.embed = ToVector(model->model->embed_tokens->weight);
  w.final_norm = ToVector(model->model->norm->weight);
  // ModelLinears: per layer q, k, v, o, gate, up, down, then the head (the embedding when tied).
  const std::vector<LinearSlot> slots = ModelLinears(model, /*with_head=*/true);
  AUGUR_CHECK(static_cast<int64_t>(slots.size()) == 7 * cfg.num_hidden_layers + 1, "native runtime: ", slots.size(),
              " linears");
  w.layers.resize(cfg.num_hidden_layers);
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    LlamaLayerWeights& layer = w.layers[i];
    const auto dl = model->model->layers->ptr<DecoderLayerImpl>(i);
    layer.input_norm = ToVector(dl->input_layernorm->weight);
    layer.post_norm = ToVector(dl->post_attention_layernorm->weight);
    LinearWeights* dst[7] = {&layer.q, &layer.k, &layer.v, &layer.o, &layer.gate, &layer.up, &layer.down};
    for (int j = 0; j < 7; ++j) {
      const LinearSlot& s = slots[7 * i + j];
      AUGUR_ASSIGN_OR_RETURN(*dst[j], SlotWeights(s.name, s.weight, s.bias, *s.backend));
    }
  }
  const LinearSlot& h = slots.back();
  AUGUR_ASSIGN_OR_RETURN(w.head, SlotWeights(h.name, h.weight, h.bias, *h.backend));
  return Create(std::move(w), capacity);
}

absl::StatusOr<std::unique_ptr<NativeLlama>> NativeLlama::Create(LlamaWeights w, int64_t capacity) {
  const ModelConfig& cfg = w.config;
  if (capacity < 1) return absl::InvalidArgumentError(absl::StrCat("native runtime: capacity ", capacity, " < 1"));
  if (cfg.head_dim_or_default() % 2 != 0)
    return absl::UnimplementedError(absl::StrCat("native runtime: odd head_dim ", cfg.head_dim_or_default()));
  if (cfg.num_key_value_heads < 1 || cfg.num_attention_heads % cfg.num_key_value_heads != 0)
    return absl::InvalidArgumentError(absl::StrCat("native runtime: ", cfg.num_attention_heads,
                                                   " heads are not a multiple of ", cfg.num_key_value_heads,
                                                   " key/value heads"));
  if (static_cast<int64_t>(w.layers.size()) != cfg.num_hidden_layers ||
      static_cast<int64_t>(w.embed.size()) != cfg.vocab_size * cfg.hidden_size ||
      static_cast<int64_t>(w.final_norm.size()) != cfg.hidden_size)
    return absl::InvalidArgumentError("native runtime: weights do not match their config");
  std::unique_ptr<NativeLlama> n(new NativeLlama(cfg, capacity));
  n->embed_ = std::move(w.embed);
  n->final_norm_ = std::move(w.final_norm);
  const int64_t d = n->head_dim_;
  // Same expression as core/model.cc: 1 / theta^(arange(0, D, 2) / D), in float32.
  n->inv_freq_ = ToVector(1.0 / at::pow(cfg.rope_theta, at::arange(0, d, 2, at::kLong).to(at::kFloat) / d));
  n->layers_.resize(cfg.num_hidden_layers);
  const char* names[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  for (int64_t i = 0; i < cfg.num_hidden_layers; ++i) {
    Layer& layer = n->layers_[i];
    LlamaLayerWeights& src = w.layers[i];
    if (static_cast<int64_t>(src.input_norm.size()) != cfg.hidden_size ||
        static_cast<int64_t>(src.post_norm.size()) != cfg.hidden_size)
      return absl::InvalidArgumentError(absl::StrCat("native runtime: layer ", i, ": norm weights of the wrong size"));
    layer.input_norm = std::move(src.input_norm);
    layer.post_norm = std::move(src.post_norm);
    Linear* dst[7] = {&layer.q, &layer.k, &layer.v, &layer.o, &layer.gate, &layer.up, &layer.down};
    LinearWeights* from[7] = {&src.q, &src.k, &src.v, &src.o, &src.gate, &src.up, &src.down};
    for (int j = 0; j < 7; ++j) {
      AUGUR_ASSIGN_OR_RETURN(*dst[j], MakeLinear(absl::StrCat("layer ", i, " ", names[j]), std::move(*from[j])));
    }
    const size_t cache = static_cast<size_t>(n->kv_heads_ * capacity * d);
    layer.k_cache.assign(cache, 0.f);
    layer.v_cache.assign(cache, 0.f);
  }
  AUGUR_ASSIGN_OR_RETURN(n->head_, MakeLinear("lm_head", std::move(w.head)));
  if (n->head_.out != cfg.vocab_size || n->head_.in != cfg.hidden_size)
    return absl::InvalidArgumentError("native runtime: the head does not match the vocabulary");
  n->scores_.assign(static_cast<size_t>(capacity), 0.f);
  n->EnsureScratch(1);
  return n;
}

std::string NativeLlama::Linear::precision() const {
  return bits == 0 ? "fp32" : packed.scheme.name();
}

std::string NativeLlama::precision() const {
  std::string body;
  for (const Layer& l : layers_)
    for (const Linear* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      if (body.empty()) body = p->precision();
      else if (body != p->precision()) body = "mixed";
    }
  const std::string head = head_.precision();
  return head == body ? body : absl::StrCat(body, " + ", head, " head");
}

int64_t NativeLlama::linear_bytes() const {
  int64_t bytes = 0;
  auto add = [&](const Linear& l) { bytes += l.bits == 0 ? l.out * l.in * 4 : l.packed.bytes(); };
  for (const Layer& l : layers_)
    for (const Linear* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) add(*p);
  add(head_);
  return bytes;
}

// ---- building blocks -------------------------------------------------------------------------

void NativeLlama::Linear::Apply(const float* x, int64_t m, float* y, bool gemm_ok) const {
  const float* b = bias.empty() ? nullptr : bias.data();
  const int64_t gemm_rows = DequantGemmMinRows();
  if (gemm_ok && gemm_rows > 0 && m >= gemm_rows) return ApplyGemm(x, m, y);
  if (bits == 8) qkernels::Int8GemmCpu(x, m, w8, b, y);
  else if (bits == 4) qkernels::Int4GemmCpu(x, m, w4, b, y);
  else fkernels::F32GemmCpu(x, m, weight.data(), out, in, b, y);
}

// Many rows at once (a prompt's prefill; also NAT's first forward, which carries the prompt):
// the same route as QuantizedLinear (runtime/qlinear.h) takes from DequantGemmMinRows() rows,
// ATen's GEMM (MKL), which reuses each weight far better than the row-tiled kernels. Once per
// prompt, so its allocations do not matter; decode steps never come here.
void NativeLlama::Linear::ApplyGemm(const float* x, int64_t m, float* y) const {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor xt = at::from_blob(const_cast<float*>(x), {m, in}, f32);
  at::Tensor yt = at::from_blob(y, {m, out}, f32);
  const at::Tensor bt = bias.empty() ? at::Tensor() : at::from_blob(const_cast<float*>(bias.data()), {out}, f32);
  if (bits != 0) {
    yt.copy_(DequantGemmLinear(xt, packed, bt));
    return;
  }
  const at::Tensor wt = at::from_blob(const_cast<float*>(weight.data()), {out, in}, f32);
  if (bt.defined()) at::addmm_out(yt, bt, xt, wt.t());
  else at::mm_out(yt, xt, wt.t());
}

void NativeLlama::EnsureScratch(int64_t m) {
  if (m <= scratch_rows_) return;
  scratch_rows_ = m;
  const auto n = static_cast<size_t>(m);
  x_.resize(n * hidden_);
  xn_.resize(n * hidden_);
  tmp_.resize(n * hidden_);
  q_.resize(n * heads_ * head_dim_);
  attn_.resize(n * heads_ * head_dim_);
  k_.resize(n * kv_heads_ * head_dim_);
  v_.resize(n * kv_heads_ * head_dim_);
  gate_.resize(n * inter_);
  up_.resize(n * inter_);
  cos_.resize(n * head_dim_ / 2);
  sin_.resize(n * head_dim_ / 2);
}

// transformers' LlamaRMSNorm in float32: w * (x * rsqrt(mean(x^2) + eps)).
void NativeLlama::RmsNorm(const float* x, const std::vector<float>& w, int64_t m, float* y) const {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * hidden_;
    double ss = 0;
    for (int64_t c = 0; c < hidden_; ++c) ss += static_cast<double>(xi[c]) * xi[c];
    const float r = 1.f / std::sqrt(static_cast<float>(ss / hidden_) + static_cast<float>(cfg_.rms_norm_eps));
    for (int64_t c = 0; c < hidden_; ++c) y[i * hidden_ + c] = w[c] * (xi[c] * r);
  }
}

// Rotate-half RoPE (core/model.cc): x' = x * cos + rotate_half(x) * sin, where the cos/sin
// tables repeat their D/2 frequencies over both halves.
void NativeLlama::Rope(float* x, int64_t m, int64_t heads) const {
  const int64_t half = head_dim_ / 2;
  for (int64_t i = 0; i < m; ++i) {
    const float* c = cos_.data() + i * half;
    const float* s = sin_.data() + i * half;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (i * heads + h) * head_dim_;
      for (int64_t j = 0; j < half; ++j) {
        const float a = v[j], b = v[j + half];
        v[j] = a * c[j] - b * s[j];
        v[j + half] = b * c[j] + a * s[j];
      }
    }
  }
}

// Scaled dot-product attention of the M new tokens (q_, rows of H*D) over the cache, which
// already holds their keys/values at [length_, length_+M). The cached prefix is always visible;
// new token i sees new token j where local_mask[i*M+j] (null: j <= i); Mistral's window hides
// keys more than sliding_window behind (by cache index, as core/model.cc does). GQA: query
// head h reads key/value head h / (H/Hkv), as transformers' repeat_kv.
void NativeLlama::Attention(const Layer& layer, int64_t m, const bool* local_mask) {
  const int64_t past = length_, rep = heads_ / kv_heads_, d = head_dim_;
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  const int64_t window = cfg_.sliding_window;
  const bool windowed = window > 0 && past + m > window;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < m; ++i) {
    // Causal without a window: keys past the token itself are never visible, skip them.
    const int64_t n_keys = local_mask == nullptr ? past + i + 1 : past + m;
    const int64_t first = windowed ? std::max<int64_t>(0, past + i - window + 1) : 0;
    for (int64_t h = 0; h < heads_; ++h) {
      const int64_t g = h / rep;
      const float* kc = layer.k_cache.data() + g * capacity_ * d;
      const float* vc = layer.v_cache.data() + g * capacity_ * d;
      float* sc = scores_.data();
      fkernels::AttentionScores(q_.data() + (i * heads_ + h) * d, kc, n_keys, d, scale, sc);
      for (int64_t j = 0; j < first; ++j) sc[j] = kNegInf;
      if (local_mask != nullptr)
        for (int64_t j = 0; j < m; ++j)
          if (!local_mask[i * m + j]) sc[past + j] = kNegInf;
      float mx = kNegInf;
      for (int64_t j = 0; j < n_keys; ++j) mx = std::max(mx, sc[j]);
      float* out = attn_.data() + (i * heads_ + h) * d;
      if (mx == kNegInf) {  // nothing visible (a mask row of zeros): no information
        std::fill(out, out + d, 0.f);
        continue;
      }
      float sum = 0.f;
      for (int64_t j = 0; j < n_keys; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
      const float inv = 1.f / sum;
      for (int64_t j = 0; j < n_keys; ++j) sc[j] *= inv;
      fkernels::WeightedValues(sc, vc, n_keys, d, out);
    }
  }
}

// ---- forward -----------------------------------------------------------------------------------

at::Tensor NativeLlama::hidden(size_t j) const {
  AUGUR_CHECK(j < taps_.size(), "native runtime: hidden state ", j, " of ", taps_.size(), " kept");
  return at::from_blob(const_cast<float*>(taps_[j].data()), {tap_rows_, hidden_},
                       at::TensorOptions().dtype(at::kFloat));
}

void NativeLlama::compact(int64_t base, absl::Span<const int64_t> keep) {
  const int64_t n = static_cast<int64_t>(keep.size());
  AUGUR_CHECK(base >= 0 && base + n <= length_, "native runtime: compact to ", base, " + ", n, " entries of ",
              length_);
  const int64_t d = head_dim_;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = keep[i];
    AUGUR_CHECK(src >= base + i && src < length_ && (i == 0 || src > keep[i - 1]), "native runtime: compact: entry ",
                src, " out of order or outside [", base + i, ", ", length_, ")");
    if (src == base + i) continue;  // ascending and >= destination: copying forward is safe
    for (Layer& layer : layers_)
      for (int64_t g = 0; g < kv_heads_; ++g) {
        const size_t from = static_cast<size_t>((g * capacity_ + src) * d);
        const size_t to = static_cast<size_t>((g * capacity_ + base + i) * d);
        std::memcpy(layer.k_cache.data() + to, layer.k_cache.data() + from, sizeof(float) * d);
        std::memcpy(layer.v_cache.data() + to, layer.v_cache.data() + from, sizeof(float) * d);
      }
  }
  length_ = base + n;
}

at::Tensor NativeLlama::canonical_logits(absl::Span<const int64_t> context) {
  // The cache past length_ is scratch: run the whole context there would need a second
  // cache; rows are exact, so the engine never asks. Refuse rather than clobber the cache.
  AUGUR_CHECK(false, "native runtime: canonical_logits is not needed (rows_exact) and not supported; ",
              context.size(), " tokens asked");
  return {};
}

void NativeLlama::truncate(int64_t n) {
  AUGUR_CHECK(n >= 0 && n <= length_, "native runtime: truncate to ", n, " outside [0, ", length_, "]");
  length_ = n;
}

at::Tensor NativeLlama::forward(absl::Span<const int64_t> ids, const DecodeOptions& opts) {
  const int64_t m = static_cast<int64_t>(ids.size());
  AUGUR_CHECK(m >= 1, "native runtime: no new tokens");
  AUGUR_CHECK(length_ + m <= capacity_, "native runtime: cache full: ", length_, " cached + ", m,
              " new tokens > capacity ", capacity_);
  AUGUR_CHECK(opts.positions.empty() || static_cast<int64_t>(opts.positions.size()) == m, "native runtime: ",
              opts.positions.size(), " positions for ", m, " tokens");
  const bool* local_mask = nullptr;
  at::Tensor mask;
  if (opts.attn_mask.defined()) {
    AUGUR_CHECK(opts.attn_mask.dim() == 2 && opts.attn_mask.size(0) == m && opts.attn_mask.size(1) == m,
                "native runtime: attn_mask of ", opts.attn_mask.dim(), " dims, ", opts.attn_mask.numel(),
                " entries for ", m, " tokens");
    mask = opts.attn_mask.to(at::kCPU, at::kBool).contiguous();
    local_mask = mask.data_ptr<bool>();
  }
  const int64_t k_rows = opts.logits_last > 0 && opts.logits_last < m ? opts.logits_last : m;
  EnsureScratch(m);
  if (logits_.size() < static_cast<size_t>(k_rows * head_rows_))
    logits_.resize(static_cast<size_t>(k_rows * head_rows_));
  const int64_t c = hidden_, d = head_dim_, half = d / 2;

  for (int64_t i = 0; i < m; ++i) {
    const int64_t id = ids[i];
    AUGUR_CHECK(id >= 0 && id < vocab_, "native runtime: token id ", id, " outside the vocabulary ", vocab_);
    std::memcpy(x_.data() + i * c, embed_.data() + id * c, sizeof(float) * c);
    // RoPE tables in float32: freq = float(position) * inv_freq, as core/model.cc.
    const float p = static_cast<float>(opts.positions.empty() ? length_ + i : opts.positions[i]);
    for (int64_t j = 0; j < half; ++j) {
      const float f = p * inv_freq_[j];
      cos_[i * half + j] = std::cos(f);
      sin_[i * half + j] = std::sin(f);
    }
  }

  const bool gemm = opts.prefill;
  const int64_t n_layers = static_cast<int64_t>(layers_.size());
  for (int64_t h : opts.hidden_layers)
    AUGUR_CHECK(h >= 0 && h <= n_layers, "native runtime: hidden layer ", h, " outside [0, ", n_layers, "]");
  taps_.resize(opts.hidden_layers.size());
  tap_rows_ = m;
  auto tap = [&](int64_t after) {  // after = 0: embeddings, i: output of layer i
    for (size_t j = 0; j < opts.hidden_layers.size(); ++j)
      if (opts.hidden_layers[j] == after) taps_[j].assign(x_.begin(), x_.begin() + m * c);
  };
  tap(0);
  const int64_t kv_row = kv_heads_ * d;
  int64_t layer_index = 0;
  for (Layer& layer : layers_) {
    // Attention block: x += o_proj(attn(rope(q), rope(k), v)).
    RmsNorm(x_.data(), layer.input_norm, m, xn_.data());
    layer.q.Apply(xn_.data(), m, q_.data(), gemm);
    layer.k.Apply(xn_.data(), m, k_.data(), gemm);
    layer.v.Apply(xn_.data(), m, v_.data(), gemm);
    Rope(q_.data(), m, heads_);
    Rope(k_.data(), m, kv_heads_);
    for (int64_t i = 0; i < m; ++i)  // the cache is [Hkv, capacity, D]: one row per head
      for (int64_t g = 0; g < kv_heads_; ++g) {
        const size_t at = static_cast<size_t>((g * capacity_ + length_ + i) * d);
        std::memcpy(layer.k_cache.data() + at, k_.data() + i * kv_row + g * d, sizeof(float) * d);
        std::memcpy(layer.v_cache.data() + at, v_.data() + i * kv_row + g * d, sizeof(float) * d);
      }
    Attention(layer, m, local_mask);
    layer.o.Apply(attn_.data(), m, tmp_.data(), gemm);
    for (int64_t j = 0; j < m * c; ++j) x_[j] += tmp_[j];
    // MLP block: x += down(silu(gate(x)) * up(x)).
    RmsNorm(x_.data(), layer.post_norm, m, xn_.data());
    layer.gate.Apply(xn_.data(), m, gate_.data(), gemm);
    layer.up.Apply(xn_.data(), m, up_.data(), gemm);
    for (int64_t j = 0; j < m * inter_; ++j) {
      const float g = gate_[j];
      gate_[j] = g / (1.f + std::exp(-g)) * up_[j];
    }
    layer.down.Apply(gate_.data(), m, tmp_.data(), gemm);
    for (int64_t j = 0; j < m * c; ++j) x_[j] += tmp_[j];
    tap(++layer_index);
  }
  length_ += m;
  for (size_t j = 0; j < opts.hidden_layers.size(); ++j)
    if (opts.hidden_layers[j] == n_layers) {  // after the final norm, every row
      taps_[j].resize(static_cast<size_t>(m * c));
      RmsNorm(x_.data(), final_norm_, m, taps_[j].data());
    }

  // Final norm and head on the last K rows only (both are per row).
  const float* last = x_.data() + (m - k_rows) * c;
  RmsNorm(last, final_norm_, k_rows, xn_.data());
  head_.Apply(xn_.data(), k_rows, logits_.data(), gemm);
  return at::from_blob(logits_.data(), {k_rows, head_rows_}, at::TensorOptions().dtype(at::kFloat));
}

absl::Status NativeLlama::RestrictHead(const std::vector<int64_t>& ids) {
  AUGUR_RETURN_IF_ERROR(CheckHeadIds(ids, vocab_));
  AUGUR_CHECK(head_.out == vocab_, "native runtime: the head is already restricted");
  const int64_t n = static_cast<int64_t>(ids.size());
  Linear h;
  h.out = n;
  h.in = head_.in;
  h.bits = head_.bits;
  if (!head_.bias.empty())
    for (int64_t id : ids) h.bias.push_back(head_.bias[id]);
  if (head_.bits == 0) {
    h.weight.resize(static_cast<size_t>(n * h.in));
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(h.weight.data() + i * h.in, head_.weight.data() + ids[i] * h.in, sizeof(float) * h.in);
  } else {
    const at::Tensor idx = at::tensor(ids, at::kLong);
    h.packed = head_.packed;
    h.packed.out = n;
    h.packed.qweight = head_.packed.qweight.index_select(0, idx).contiguous();
    h.packed.scales = head_.packed.scales.index_select(0, idx).contiguous();
    if (head_.packed.zeros.defined()) h.packed.zeros = head_.packed.zeros.index_select(0, idx).contiguous();
    if (h.bits == 8) {
      h.w8 = {h.packed.qweight.data_ptr<int8_t>(), h.packed.scales.data_ptr<float>(), n, h.in};
    } else {
      h.w4 = {h.packed.qweight.data_ptr<uint8_t>(), h.packed.scales.data_ptr<float>(),
              h.packed.zeros.data_ptr<uint8_t>(), n, h.in, h.packed.in_padded(), h.packed.scheme.group};
    }
  }
  head_ = std::move(h);
  head_rows_ = n;
  return absl::OkStatus();
}

}  // namespace augur
