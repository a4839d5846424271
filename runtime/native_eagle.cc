#include "runtime/native_eagle.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/safetensors.h"
#include "runtime/kernels/kernels_f32.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

std::vector<float> ToVector(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

NativeEagle::NativeEagle(const EagleConfig& cfg, int64_t capacity)
    : cfg_(cfg), capacity_(capacity), d_(cfg.hidden_size), heads_(cfg.num_attention_heads),
      kv_heads_(cfg.num_key_value_heads), head_dim_(cfg.head_dim), inter_(cfg.intermediate_size),
      nd_(cfg.draft_vocab_size) {}

NativeEagle::Linear NativeEagle::MakeLinear(const at::Tensor& weight, const QuantScheme* scheme) {
  Linear l;
  l.out = weight.size(0);
  l.in = weight.size(1);
  if (scheme == nullptr) {
    l.weight = ToVector(weight);
    return l;
  }
  l.packed = QuantizeRtn(weight.detach().to(at::kCPU, at::kFloat), *scheme);
  l.packed.qweight = l.packed.qweight.contiguous();
  l.packed.scales = l.packed.scales.to(at::kFloat).contiguous();
  if (l.packed.zeros.defined()) l.packed.zeros = l.packed.zeros.contiguous();
  l.bits = scheme->bits;
  if (l.bits == 8) {
    l.w8 = {l.packed.qweight.data_ptr<int8_t>(), l.packed.scales.data_ptr<float>(), l.out, l.in};
  } else {
    l.w4 = {l.packed.qweight.data_ptr<uint8_t>(), l.packed.scales.data_ptr<float>(),
            l.packed.zeros.data_ptr<uint8_t>(), l.out, l.in, l.packed.in_padded(), scheme->group};
  }
  return l;
}

void NativeEagle::Linear::Apply(const float* x, int64_t m, float* y) const {
  if (bits == 8) qkernels::Int8GemmCpu(x, m, w8, nullptr, y);
  else if (bits == 4) qkernels::Int4GemmCpu(x, m, w4, nullptr, y);
  else fkernels::F32GemmCpu(x, m, weight.data(), out, in, nullptr, y);
}

absl::StatusOr<std::unique_ptr<NativeEagle>> NativeEagle::Create(EagleHeadImpl& head, const std::string& scheme_name,
                                                                 int64_t capacity) {
  if (!head.device().is_cpu())
    return absl::FailedPreconditionError(absl::StrCat("native eagle: the drafter is on ", head.device().str(),
                                                      "; the native runtime runs CPU drafters only"));
  if (!head.embedding().defined())
    return absl::FailedPreconditionError("native eagle: the drafter has no embedding table");
  std::optional<QuantScheme> scheme;
  if (!scheme_name.empty()) {
    AUGUR_ASSIGN_OR_RETURN(QuantScheme s, ParseScheme(scheme_name));
    scheme = s;
  }
  const QuantScheme* sp = scheme ? &*scheme : nullptr;
  std::unique_ptr<NativeEagle> n(new NativeEagle(head.config(), capacity));
  n->precision_ = scheme ? scheme->name() : "fp32";
  n->ids_ = head.draft_ids().to(at::kCPU).contiguous();
  n->embed_ = ToVector(head.embedding());
  const int64_t dh = head.config().head_dim;
  const at::Tensor inv = 1.0 / at::pow(head.config().rope_theta, at::arange(0, dh, 2, at::kLong).to(at::kFloat) / dh);
  n->inv_freq_ = ToVector(inv);
  EagleLayerImpl& L = *head.midlayer;
  n->input_norm_ = ToVector(L.input_layernorm->weight);
  n->hidden_norm_ = ToVector(L.hidden_norm->weight);
  n->post_norm_ = ToVector(L.post_attention_layernorm->weight);
  n->final_norm_ = ToVector(head.norm->weight);
  n->fc_ = MakeLinear(head.fc->weight, sp);
  n->q_ = MakeLinear(L.self_attn->q_proj->weight, sp);
  n->k_ = MakeLinear(L.self_attn->k_proj->weight, sp);
  n->v_ = MakeLinear(L.self_attn->v_proj->weight, sp);
  n->o_ = MakeLinear(L.self_attn->o_proj->weight, sp);
  n->gate_ = MakeLinear(L.mlp->gate_proj->weight, sp);
  n->up_ = MakeLinear(L.mlp->up_proj->weight, sp);
  n->down_ = MakeLinear(L.mlp->down_proj->weight, sp);
  n->head_ = MakeLinear(head.lm_head->weight, sp);
  n->k_cache_.assign(static_cast<size_t>(n->kv_heads_ * capacity * dh), 0.f);
  n->v_cache_.assign(n->k_cache_.size(), 0.f);
  n->scores_.resize(static_cast<size_t>(capacity));
  return n;
}

void NativeEagle::truncate(int64_t n) {
  AUGUR_CHECK(n >= 0 && n <= length_, "native eagle: truncate to ", n, " outside [0, ", length_, "]");
  length_ = n;
}

// transformers' LlamaRMSNorm in float32, rows of d.
void NativeEagle::RmsNorm(const float* x, const std::vector<float>& w, int64_t m, float* y) const {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * d_;
    double ss = 0;
    for (int64_t c = 0; c < d_; ++c) ss += static_cast<double>(xi[c]) * xi[c];
    const float r = 1.f / std::sqrt(static_cast<float>(ss / d_) + static_cast<float>(cfg_.rms_norm_eps));
    for (int64_t c = 0; c < d_; ++c) y[i * d_ + c] = w[c] * (xi[c] * r);
  }
}

at::Tensor NativeEagle::Step(absl::Span<const int64_t> tokens, const at::Tensor& g_in, bool fuse,
                             absl::Span<const int64_t> positions, const at::Tensor& mask_in, at::Tensor* logits) {
  const int64_t m = static_cast<int64_t>(tokens.size());
  const int64_t past = length_, dh = head_dim_, half = dh / 2;
  AUGUR_CHECK(m >= 1 && past + m <= capacity_, "native eagle: ", m, " new pairs on ", past, " cached > capacity ",
              capacity_);
  AUGUR_CHECK(positions.empty() || static_cast<int64_t>(positions.size()) == m, "native eagle: ", positions.size(),
              " positions for ", m, " pairs");
  const at::Tensor g_cpu = g_in.to(at::kCPU, at::kFloat).contiguous();
  AUGUR_CHECK(g_cpu.dim() == 2 && g_cpu.size(0) == m && g_cpu.size(1) == (fuse ? 3 * cfg_.target_hidden_size : d_),
              "native eagle: g ", ShapeString(g_cpu.sizes()), " for ", m, " pairs");
  at::Tensor mask;
  if (mask_in.defined()) {
    mask = mask_in.to(at::kCPU, at::kBool).contiguous();
    AUGUR_CHECK(mask.dim() == 2 && mask.size(0) == m && (mask.size(1) == m || mask.size(1) == past + m),
                "native eagle: mask ", ShapeString(mask.sizes()), " for ", m, " new and ", past, " cached pairs");
  }
  const auto n = static_cast<size_t>(m);
  g_.resize(n * d_);
  x_.resize(n * 2 * d_);
  q_buf_.resize(n * heads_ * dh);
  k_buf_.resize(n * kv_heads_ * dh);
  v_buf_.resize(n * kv_heads_ * dh);
  attn_.resize(n * heads_ * dh);
  r_.resize(n * d_);
  hn_.resize(n * d_);
  gate_buf_.resize(n * inter_);
  up_buf_.resize(n * inter_);
  out_.resize(n * d_);

  // g: fc over the taps, or the given outputs.
  if (fuse) fc_.Apply(g_cpu.data_ptr<float>(), m, g_.data());
  else std::copy(g_cpu.data_ptr<float>(), g_cpu.data_ptr<float>() + n * d_, g_.begin());
  // x = [input_layernorm(embed(token)) | hidden_norm(g)], rows of 2d.
  std::vector<float> tmp(static_cast<size_t>(d_));
  for (int64_t i = 0; i < m; ++i) {
    AUGUR_CHECK(tokens[i] >= 0 && tokens[i] < cfg_.vocab_size, "native eagle: token ", tokens[i], " outside the vocabulary");
    RmsNorm(embed_.data() + tokens[i] * d_, input_norm_, 1, x_.data() + i * 2 * d_);
    RmsNorm(g_.data() + i * d_, hidden_norm_, 1, x_.data() + i * 2 * d_ + d_);
  }
  q_.Apply(x_.data(), m, q_buf_.data());
  k_.Apply(x_.data(), m, k_buf_.data());
  v_.Apply(x_.data(), m, v_buf_.data());
  // Rotate-half RoPE at each pair's position.
  for (int64_t i = 0; i < m; ++i) {
    const double pos = static_cast<double>(positions.empty() ? past + i : positions[i]);
    for (int64_t j = 0; j < half; ++j) {
      const float f = static_cast<float>(pos) * inv_freq_[j];
      const float c = std::cos(f), s = std::sin(f);
      auto rot = [&](float* v, int64_t heads) {
        for (int64_t h = 0; h < heads; ++h) {
          float* p = v + (i * heads + h) * dh;
          const float a = p[j], b = p[j + half];
          p[j] = a * c - b * s;
          p[j + half] = b * c + a * s;
        }
      };
      rot(q_buf_.data(), heads_);
      rot(k_buf_.data(), kv_heads_);
    }
    for (int64_t h = 0; h < kv_heads_; ++h) {
      std::copy_n(k_buf_.data() + (i * kv_heads_ + h) * dh, dh, k_cache_.data() + (h * capacity_ + past + i) * dh);
      std::copy_n(v_buf_.data() + (i * kv_heads_ + h) * dh, dh, v_cache_.data() + (h * capacity_ + past + i) * dh);
    }
  }
  // Attention over the cache: the prefix visible unless the mask covers it, causal by default.
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const float scale = 1.f / std::sqrt(static_cast<float>(dh));
  const int64_t rep = heads_ / kv_heads_;
  const bool* mk = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  const bool full = mask.defined() && mask.size(1) == past + m;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t n_keys = past + m;
    for (int64_t h = 0; h < heads_; ++h) {
      const int64_t gh = h / rep;
      float* sc = scores_.data();
      fkernels::AttentionScores(q_buf_.data() + (i * heads_ + h) * dh, k_cache_.data() + gh * capacity_ * dh, n_keys,
                                dh, scale, sc);
      for (int64_t j = 0; j < n_keys; ++j) {
        bool visible;
        if (full) visible = mk[i * (past + m) + j];
        else if (j < past) visible = true;
        else visible = mk != nullptr ? mk[i * m + (j - past)] : (j - past) <= i;
        if (!visible) sc[j] = kNegInf;
      }
      float mx = kNegInf;
      for (int64_t j = 0; j < n_keys; ++j) mx = std::max(mx, sc[j]);
      float* out = attn_.data() + (i * heads_ + h) * dh;
      if (mx == kNegInf) {
        std::fill(out, out + dh, 0.f);
        continue;
      }
      float sum = 0.f;
      for (int64_t j = 0; j < n_keys; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
      const float inv = 1.f / sum;
      for (int64_t j = 0; j < n_keys; ++j) sc[j] *= inv;
      fkernels::WeightedValues(sc, v_cache_.data() + gh * capacity_ * dh, n_keys, dh, out);
    }
  }
  length_ += m;
  // r = g + o_proj(attn); out = r + down(silu(gate(h)) * up(h)), h = post_attention_layernorm(r).
  o_.Apply(attn_.data(), m, r_.data());
  for (size_t i = 0; i < n * d_; ++i) r_[i] += g_[i];
  RmsNorm(r_.data(), post_norm_, m, hn_.data());
  gate_.Apply(hn_.data(), m, gate_buf_.data());
  up_.Apply(hn_.data(), m, up_buf_.data());
  for (size_t i = 0; i < n * inter_; ++i) {
    const float a = gate_buf_[i];
    gate_buf_[i] = a / (1.f + std::exp(-a)) * up_buf_[i];
  }
  down_.Apply(gate_buf_.data(), m, out_.data());
  for (size_t i = 0; i < n * d_; ++i) out_[i] += r_[i];
  if (logits != nullptr) {
    RmsNorm(out_.data(), final_norm_, m, hn_.data());
    logits_.resize(n * nd_);
    head_.Apply(hn_.data(), m, logits_.data());
    *logits = at::from_blob(logits_.data(), {m, nd_}, at::TensorOptions().dtype(at::kFloat)).clone();
  }
  return at::from_blob(out_.data(), {m, d_}, at::TensorOptions().dtype(at::kFloat));
}

}  // namespace augur
