#include "runtime/llama_weights.h"

#include <absl/strings/match.h>
#include <torch/torch.h>

#include <set>

#include "core/fs.h"
#include "core/safetensors.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

absl::Status Bad(const std::string& where, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", why));
}

std::vector<float> ToVector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

struct Reader {
  const SafetensorsCheckpoint& st;
  std::string file;
  std::set<std::string> used;

  bool Has(const std::string& name) const { return st.Find(name) != nullptr; }

  absl::StatusOr<at::Tensor> Raw(const std::string& name, const std::vector<int64_t>& shape) {
    const StTensorInfo* info = st.Find(name);
    if (info == nullptr) return Bad(file, absl::StrCat("missing tensor ", name, " that config.json implies"));
    if (!shape.empty() && info->shape != shape)
      return Bad(st.FileOf(name)->path(), absl::StrCat("tensor ", name, " has shape ", ShapeString(info->shape),
                                                       " but config.json implies ", ShapeString(shape)));
    used.insert(name);
    return st.Read(name);
  }

  absl::StatusOr<std::vector<float>> Dense(const std::string& name, const std::vector<int64_t>& shape) {
    const StTensorInfo* info = st.Find(name);
    if (info != nullptr && info->dtype != StDtype::kF32 && info->dtype != StDtype::kF16 &&
        info->dtype != StDtype::kBF16 && info->dtype != StDtype::kF64)
      return Bad(st.FileOf(name)->path(),
                 absl::StrCat("tensor ", name, " has dtype ", StDtypeName(info->dtype), ", not a float type"));
    AUGUR_ASSIGN_OR_RETURN(at::Tensor t, Raw(name, shape));
    return ToVector(t);
  }

  // NAME.weight dense, or NAME.qweight/.scales/.zeros under `scheme` when those are present.
  absl::StatusOr<LinearWeights> Linear(const std::string& name, int64_t out, int64_t in, bool bias,
                                       const QuantScheme* scheme) {
    LinearWeights l;
    l.out = out;
    l.in = in;
    if (scheme != nullptr && Has(name + ".qweight")) {
      QuantizedWeight& q = l.packed;
      q.scheme = *scheme;
      q.out = out;
      q.in = in;
      AUGUR_ASSIGN_OR_RETURN(q.qweight, Raw(name + ".qweight", {}));
      AUGUR_ASSIGN_OR_RETURN(q.scales, Raw(name + ".scales", {}));
      if (scheme->bits == 4) {
        AUGUR_ASSIGN_OR_RETURN(q.zeros, Raw(name + ".zeros", {}));
        q.zeros = q.zeros.contiguous();
      }
      q.qweight = q.qweight.contiguous();
      q.scales = q.scales.to(at::kFloat).contiguous();
      AUGUR_RETURN_IF_ERROR(ValidateQuantized(q, absl::StrCat(file, ": ", name)));
    } else {
      AUGUR_ASSIGN_OR_RETURN(l.weight, Dense(name + ".weight", {out, in}));
    }
    if (bias) {
      AUGUR_ASSIGN_OR_RETURN(l.bias, Dense(name + ".bias", {out}));
    }
    return l;
  }
};

}  // namespace

absl::StatusOr<LlamaWeights> ReadLlamaWeights(const std::string& dir) {
  torch::NoGradGuard no_grad;
  if (!IsDirectory(dir)) return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  const std::string config_path = JoinPath(dir, "config.json");
  if (!FileExists(config_path)) return Bad(dir, "no config.json; not a Hugging Face model directory");
  LlamaWeights w;
  AUGUR_ASSIGN_OR_RETURN(w.config, ModelConfig::FromFile(config_path));
  AUGUR_ASSIGN_OR_RETURN(w.meta, ReadAugurMeta(dir));
  QuantScheme scheme;
  const QuantScheme* quant = nullptr;
  if (!w.meta.quantization.empty()) {
    AUGUR_ASSIGN_OR_RETURN(scheme, ParseScheme(w.meta.quantization));
    quant = &scheme;
  }
  if (!SafetensorsCheckpoint::Exists(dir)) return Bad(dir, "no model.safetensors or model.safetensors.index.json");
  AUGUR_ASSIGN_OR_RETURN(SafetensorsCheckpoint st, SafetensorsCheckpoint::Open(dir));
  Reader r{st, JoinPath(dir, "model.safetensors"), {}};

  const ModelConfig& c = w.config;
  const int64_t hid = c.hidden_size, d = c.head_dim_or_default(), heads = c.num_attention_heads,
                kv = c.num_key_value_heads, inter = c.intermediate_size, vocab = c.vocab_size;
  AUGUR_ASSIGN_OR_RETURN(w.embed, r.Dense("model.embed_tokens.weight", {vocab, hid}));
  AUGUR_ASSIGN_OR_RETURN(w.final_norm, r.Dense("model.norm.weight", {hid}));
  w.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    LlamaLayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string p = absl::StrCat("model.layers.", i, ".");
    AUGUR_ASSIGN_OR_RETURN(l.input_norm, r.Dense(p + "input_layernorm.weight", {hid}));
    AUGUR_ASSIGN_OR_RETURN(l.post_norm, r.Dense(p + "post_attention_layernorm.weight", {hid}));
    const bool qkv_bias = c.attention_bias;
    AUGUR_ASSIGN_OR_RETURN(l.q, r.Linear(p + "self_attn.q_proj", heads * d, hid, qkv_bias, quant));
    AUGUR_ASSIGN_OR_RETURN(l.k, r.Linear(p + "self_attn.k_proj", kv * d, hid, qkv_bias, quant));
    AUGUR_ASSIGN_OR_RETURN(l.v, r.Linear(p + "self_attn.v_proj", kv * d, hid, qkv_bias, quant));
    AUGUR_ASSIGN_OR_RETURN(l.o, r.Linear(p + "self_attn.o_proj", hid, heads * d,
                                         c.o_proj_bias(), quant));
    AUGUR_ASSIGN_OR_RETURN(l.gate, r.Linear(p + "mlp.gate_proj", inter, hid, false, quant));
    AUGUR_ASSIGN_OR_RETURN(l.up, r.Linear(p + "mlp.up_proj", inter, hid, false, quant));
    AUGUR_ASSIGN_OR_RETURN(l.down, r.Linear(p + "mlp.down_proj", hid, inter, false, quant));
  }
  if (quant != nullptr && r.Has("lm_head.qweight")) {
    AUGUR_ASSIGN_OR_RETURN(w.head, r.Linear("lm_head", vocab, hid, false, quant));
  } else if (c.tie_word_embeddings) {
    w.head.out = vocab;
    w.head.in = hid;
    w.head.weight = w.embed;
    r.used.insert("lm_head.weight");  // some writers store the tied copy anyway
  } else {
    AUGUR_ASSIGN_OR_RETURN(w.head, r.Linear("lm_head", vocab, hid, false, nullptr));
  }
  for (const std::string& name : st.names())
    if (!r.used.count(name) && !absl::EndsWith(name, "rotary_emb.inv_freq"))
      return Bad(r.file, absl::StrCat("unexpected tensor ", name, " (not in a ", c.architecture,
                                      " with this config.json)"));
  return w;
}

absl::Status QuantizeWeightsRtn(LlamaWeights& w, const QuantScheme& scheme, bool head) {
  torch::NoGradGuard no_grad;
  auto quantize = [&](LinearWeights& l) -> absl::Status {
    if (l.quantized()) return absl::InvalidArgumentError("quantize on load: the weights are already quantized");
    const at::Tensor t = at::from_blob(l.weight.data(), {l.out, l.in}, at::TensorOptions().dtype(at::kFloat));
    l.packed = QuantizeRtn(t, scheme);
    l.weight = {};
    return absl::OkStatus();
  };
  for (LlamaLayerWeights& l : w.layers)
    for (LinearWeights* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) AUGUR_RETURN_IF_ERROR(quantize(*p));
  if (head) AUGUR_RETURN_IF_ERROR(quantize(w.head));
  return absl::OkStatus();
}

}  // namespace augur
