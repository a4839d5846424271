#include "runtime/qmodel.h"

#include <torch/torch.h>

#include <set>

#include "core/fs.h"
#include "core/safetensors.h"
#include "core/tokenizer.h"
#include "runtime/qlinear.h"

namespace augur {
namespace {

using json = nlohmann::json;
constexpr char kMetaKey[] = "augur_quantization";  // safetensors __metadata__: the scheme name

absl::Status Bad(const std::string& where, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("quantized checkpoint: ", where, ": ", problem));
}

}  // namespace

std::vector<LinearSlot> ModelLinears(LlamaModel& model, bool with_head) {
  std::vector<LinearSlot> slots;
  auto add = [&](const std::string& name, torch::nn::Linear& lin, LinearBackendPtr* be, int64_t layer) {
    slots.push_back({name, lin->weight, lin->bias, be, layer});
  };
  const int64_t n = model->config().num_hidden_layers;
  for (int64_t i = 0; i < n; ++i) {
    auto layer = model->model->layers->ptr<DecoderLayerImpl>(i);
    const std::string p = absl::StrCat("model.layers.", i, ".");
    auto& a = *layer->self_attn;
    auto& m = *layer->mlp;
    add(p + "self_attn.q_proj", a.q_proj, &a.q_backend, i);
    add(p + "self_attn.k_proj", a.k_proj, &a.k_backend, i);
    add(p + "self_attn.v_proj", a.v_proj, &a.v_backend, i);
    add(p + "self_attn.o_proj", a.o_proj, &a.o_backend, i);
    add(p + "mlp.gate_proj", m.gate_proj, &m.gate_backend, i);
    add(p + "mlp.up_proj", m.up_proj, &m.up_backend, i);
    add(p + "mlp.down_proj", m.down_proj, &m.down_backend, i);
  }
  if (with_head) {
    const at::Tensor w = model->lm_head ? model->lm_head->weight : model->model->embed_tokens->weight;
    slots.push_back({kHeadName, w, at::Tensor(), &model->head_backend, -1});
  }
  return slots;
}

void InstallQuantized(LlamaModel& model, const QuantizedLinears& linears) {
  torch::NoGradGuard no_grad;
  const auto device = model->device();
  for (auto& slot : ModelLinears(model, /*with_head=*/true)) {
    auto it = linears.find(slot.name);
    if (it == linears.end()) continue;
    // A tied head keeps the fp32 embedding: only untied Linears take the dequantized copy.
    if (slot.layer >= 0 || model->lm_head) slot.weight.copy_(Dequantize(it->second));
    *slot.backend = std::make_shared<QuantLinearBackend>(it->second.to(device),
                                                         slot.bias.defined() ? slot.bias.detach() : at::Tensor());
  }
}

absl::Status SaveQuantizedCheckpoint(LlamaModel& model, const QuantizedLinears& linears, const QuantScheme& scheme,
                                     const QuantizationInfo& info, AugurMeta meta, const std::string& dir,
                                     const std::string& tokenizer_model) {
  if (FileExists(dir) && !IsDirectory(dir)) return Bad(dir, "exists and is a file, not a directory");
  if (!tokenizer_model.empty() && !FileExists(tokenizer_model))
    return Bad(dir, absl::StrCat("tokenizer model ", tokenizer_model, " does not exist"));
  AUGUR_RETURN_IF_ERROR(MakeDirs(dir));
  torch::NoGradGuard no_grad;
  NamedTensors tensors;
  std::set<std::string> replaced;  // parameter names written in quantized form instead
  for (const auto& [name, q] : linears) {
    if (name != kHeadName || model->lm_head) replaced.insert(name + ".weight");
    AUGUR_RETURN_IF_ERROR(ValidateQuantized(q, name));
    if (q.scheme != scheme) return Bad(name, absl::StrCat("is ", q.scheme.name(), ", the checkpoint ", scheme.name()));
  }
  for (const auto& p : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = p.key();
    if (replaced.count(name)) {
      const std::string base = name.substr(0, name.size() - 7);  // drop ".weight"
      const QuantizedWeight q = linears.at(base).to(torch::kCPU);
      tensors.emplace_back(base + ".qweight", q.qweight);
      tensors.emplace_back(base + ".scales", q.scales);
      if (q.zeros.defined()) tensors.emplace_back(base + ".zeros", q.zeros);
      continue;
    }
    tensors.emplace_back(name, p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous());
  }
  if (linears.count(kHeadName) && !model->lm_head) {  // tied: the head's quantized copy
    const QuantizedWeight q = linears.at(kHeadName).to(torch::kCPU);
    tensors.emplace_back(std::string(kHeadName) + ".qweight", q.qweight);
    tensors.emplace_back(std::string(kHeadName) + ".scales", q.scales);
    if (q.zeros.defined()) tensors.emplace_back(std::string(kHeadName) + ".zeros", q.zeros);
  }
  AUGUR_RETURN_IF_ERROR(WriteSafetensorsCheckpoint(dir, tensors, 0, {{kMetaKey, scheme.name()}}));
  if (!tokenizer_model.empty()) AUGUR_RETURN_IF_ERROR(CopyTokenizerFiles(tokenizer_model, dir));
  ModelConfig cfg = model->config();
  cfg.torch_dtype = "float32";
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, "config.json"), cfg.ToJson().dump(2) + "\n"));
  meta.quantization = scheme.name();
  meta.extra["quantization"] = {{"scheme", scheme.name()},
                                {"method", info.method},
                                {"head_quantized", info.head_quantized},
                                {"settings", info.settings}};
  return WriteFileAtomic(JoinPath(dir, "augur.json"), meta.ToJson().dump(2) + "\n");
}

absl::StatusOr<QuantizedCheckpoint> LoadQuantizedModel(const std::string& dir, c10::Device device,
                                                       const std::string& expect_scheme) {
  if (!IsDirectory(dir)) return absl::NotFoundError(absl::StrCat("quantized checkpoint: ", dir, ": no such directory"));
  const std::string meta_path = JoinPath(dir, "augur.json"), config_path = JoinPath(dir, "config.json");
  if (!FileExists(config_path)) return Bad(dir, "no config.json; not a model directory");
  if (!FileExists(meta_path)) return Bad(dir, "no augur.json, so not a quantized checkpoint (load it with LoadCheckpoint)");
  QuantizedCheckpoint out;
  out.dir = dir;
  AUGUR_ASSIGN_OR_RETURN(ModelConfig cfg, ModelConfig::FromFile(config_path));
  AUGUR_ASSIGN_OR_RETURN(out.meta, ReadAugurMeta(dir));
  if (out.meta.quantization.empty())
    return Bad(dir, "is not quantized (augur.json quantization is null); load it with LoadCheckpoint");
  auto scheme = ParseScheme(out.meta.quantization);
  if (!scheme.ok()) return Bad(meta_path, std::string(scheme.status().message()));
  out.scheme = *scheme;
  if (!expect_scheme.empty() && expect_scheme != out.scheme.name())
    return Bad(dir, absl::StrCat("is quantized as ", out.scheme.name(), ", expected ", expect_scheme));

  AUGUR_ASSIGN_OR_RETURN(SafetensorsCheckpoint weights, SafetensorsCheckpoint::Open(dir));
  const std::string file = JoinPath(dir, kSafetensorsSingleName);
  for (const auto& f : weights.files()) {
    auto it = f->metadata().find(kMetaKey);
    if (it == f->metadata().end() || it->second != out.scheme.name())
      return Bad(f->path(), absl::StrCat("records scheme '", it == f->metadata().end() ? "" : it->second,
                                         "' but augur.json says ", out.scheme.name()));
  }

  torch::NoGradGuard no_grad;
  LlamaModel model(cfg);
  std::set<std::string> used;
  auto read = [&](const std::string& name) -> absl::StatusOr<at::Tensor> {
    if (!weights.Find(name)) return Bad(file, absl::StrCat("missing tensor ", name));
    used.insert(name);
    return weights.Read(name);
  };
  // Quantized linears: every decoder linear, the head when lm_head.qweight is present.
  for (auto& slot : ModelLinears(model, /*with_head=*/true)) {
    if (slot.layer < 0 && !weights.Find(std::string(kHeadName) + ".qweight")) continue;
    QuantizedWeight q;
    q.scheme = out.scheme;
    q.out = slot.weight.size(0);
    q.in = slot.weight.size(1);
    AUGUR_ASSIGN_OR_RETURN(q.qweight, read(slot.name + ".qweight"));
    AUGUR_ASSIGN_OR_RETURN(q.scales, read(slot.name + ".scales"));
    if (out.scheme.bits == 4) {
      AUGUR_ASSIGN_OR_RETURN(q.zeros, read(slot.name + ".zeros"));
    }
    AUGUR_RETURN_IF_ERROR(ValidateQuantized(q, slot.name));
    out.linears[slot.name] = q;
  }
  for (auto& p : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = p.key();
    const std::string base = name.size() > 7 ? name.substr(0, name.size() - 7) : "";
    if (out.linears.count(base) && name.compare(name.size() - 7, 7, ".weight") == 0) continue;
    AUGUR_ASSIGN_OR_RETURN(at::Tensor t, read(name));
    if (t.sizes() != p.value().sizes())
      return Bad(file, absl::StrCat("tensor ", name, " has shape ", ShapeString(t.sizes()), " but config.json implies ",
                                    ShapeString(p.value().sizes())));
    if (!t.is_floating_point()) return Bad(file, absl::StrCat("tensor ", name, " is not a float tensor"));
    p.value().copy_(t);
  }
  for (const auto& name : weights.names())
    if (!used.count(name)) return Bad(file, absl::StrCat("unexpected tensor ", name));
  model->to(device);
  InstallQuantized(model, out.linears);
  out.model = model;
  out.tokenizer_model = FindTokenizerFile(dir);
  return out;
}

absl::StatusOr<LoadedCheckpoint> LoadAnyCheckpoint(const std::string& dir, c10::Device device) {
  const std::string meta_path = JoinPath(dir, "augur.json");
  bool quantized = false;
  if (FileExists(meta_path)) {
    AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(meta_path));
    const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Bad(meta_path, "not valid JSON");
    quantized = j.is_object() && j.contains("quantization") && !j["quantization"].is_null() &&
                !(j["quantization"].is_string() && j["quantization"].get<std::string>().empty());
  }
  if (!quantized) return LoadCheckpoint(dir, device, torch::kFloat32);
  AUGUR_ASSIGN_OR_RETURN(QuantizedCheckpoint q, LoadQuantizedModel(dir, device));
  LoadedCheckpoint out;
  out.model = q.model;
  out.meta = std::move(q.meta);
  out.dir = std::move(q.dir);
  out.tokenizer_model = std::move(q.tokenizer_model);
  return out;
}

}  // namespace augur
