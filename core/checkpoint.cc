#include "core/checkpoint.h"

#include "core/tokenizer.h"

#include <torch/torch.h>

#include <set>

#include "core/eagle_config.h"
#include "core/fs.h"
#include "core/safetensors.h"

// The CLI defines the real version; the library falls back to the project's.
#ifndef AUGUR_VERSION_STRING
#define AUGUR_VERSION_STRING "0.1.0"
#endif

namespace augur {
namespace {

using json = nlohmann::json;

constexpr const char* kConfigName = "config.json";
constexpr const char* kMetaName = "augur.json";
constexpr int kMetaFormatVersion = 1;


absl::Status Bad(const std::string& where, const std::string& problem) {
  return absl::InvalidArgumentError(absl::StrCat("checkpoint: ", where, ": ", problem));
}

// The on-disk dtypes a checkpoint may use (SaveOptions.dtype, config.json torch_dtype).
absl::StatusOr<torch::Dtype> FloatDtype(const std::string& name, const std::string& where) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  return Bad(where, absl::StrCat("unsupported dtype '", name, "' (use float32, float16 or bfloat16)"));
}

std::string TorchDtypeName(torch::Dtype t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat16: return "float16";
    case torch::kBFloat16: return "bfloat16";
    default: return c10::toString(t);
  }
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "a, b, c and 4 more"
std::string NameList(const std::vector<std::string>& names) {
  constexpr size_t kShown = 3;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kShown; ++i) absl::StrAppend(&out, i ? ", " : "", names[i]);
  if (names.size() > kShown) absl::StrAppend(&out, " and ", names.size() - kShown, " more");
  return out;
}

// Tensors a checkpoint may hold that are not parameters of augur's model: transformers
// versions before 4.4x saved the rotary inv_freq buffers.
bool IgnorableExtra(const std::string& name, const ModelConfig& cfg) {
  if (EndsWith(name, "rotary_emb.inv_freq")) return true;
  // Tied embeddings: some writers store lm_head.weight anyway; the embedding is used.
  if (cfg.tie_word_embeddings && name == "lm_head.weight") return true;
  return false;
}

template <typename T>
absl::Status GetField(const json& j, const char* key, T* out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return Bad(source, absl::StrCat("field '", key, "' has the wrong type (", it->dump(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

// ---- augur.json ---------------------------------------------------------------------------

json AugurMeta::ToJson() const {
  json j;
  j["format_version"] = kMetaFormatVersion;
  j["kind"] = kind;
  if (kind == kKindNatDrafter || gamma > 0) j["gamma"] = gamma;
  if (kind == kKindNatDrafter || mask_token_id >= 0) j["mask_token_id"] = mask_token_id;
  j["quantization"] = quantization.empty() ? json(nullptr) : json(quantization);
  j["provenance"] = {{"target_fingerprint", target_fingerprint},
                     {"data_fingerprint", data_fingerprint},
                     {"tokenizer_fingerprint", tokenizer_fingerprint},
                     {"command_line", command_line},
                     {"version", version.empty() ? std::string(AUGUR_VERSION_STRING) : version}};
  j["extra"] = extra.is_object() ? extra : json::object();
  return j;
}

const std::vector<ArtifactKind>& ArtifactKinds() {
  static const std::vector<ArtifactKind> kTable = {
      {kKindTarget, "a model to serve (imported, trained, or quantized by augur quantize)", false},
      {kKindArDrafter, "a compact autoregressive drafter (augur distill ar)", true},
      {kKindNatDrafter, "a parallel drafter: gamma tokens in one forward (augur distill nat)", true},
      {kKindEagleDrafter, "an EAGLE-3 feature drafter: one layer over the target's hidden states (augur distill eagle)",
       true},
  };
  return kTable;
}

const ArtifactKind* FindArtifactKind(std::string_view name) {
  for (const ArtifactKind& k : ArtifactKinds())
    if (name == k.name) return &k;
  return nullptr;
}

absl::StatusOr<AugurMeta> AugurMeta::FromJson(const json& j, const std::string& source_view) {
  const std::string source(source_view);
  if (!j.is_object()) return Bad(source, "not a JSON object");
  AugurMeta m;
  int64_t format_version = kMetaFormatVersion;
  AUGUR_RETURN_IF_ERROR(GetField(j, "format_version", &format_version, source));
  if (format_version > kMetaFormatVersion)
    return Bad(source, absl::StrCat("format_version ", format_version, " is newer than this augur reads (",
                                    kMetaFormatVersion, "); upgrade augur"));
  AUGUR_RETURN_IF_ERROR(GetField(j, "kind", &m.kind, source));
  if (FindArtifactKind(m.kind) == nullptr) {
    std::string known;
    for (const ArtifactKind& k : ArtifactKinds()) absl::StrAppend(&known, known.empty() ? "" : ", ", k.name);
    return Bad(source, absl::StrCat("unknown kind '", m.kind, "' (known: ", known, ")"));
  }
  AUGUR_RETURN_IF_ERROR(GetField(j, "gamma", &m.gamma, source));
  if (m.gamma < 0) return Bad(source, absl::StrCat("gamma ", m.gamma, " is negative"));
  AUGUR_RETURN_IF_ERROR(GetField(j, "mask_token_id", &m.mask_token_id, source));
  AUGUR_RETURN_IF_ERROR(GetField(j, "quantization", &m.quantization, source));
  auto prov = j.find("provenance");
  if (prov != j.end() && !prov->is_null()) {
    if (!prov->is_object()) return Bad(source, "'provenance' is not a JSON object");
    AUGUR_RETURN_IF_ERROR(GetField(*prov, "target_fingerprint", &m.target_fingerprint, source));
    AUGUR_RETURN_IF_ERROR(GetField(*prov, "data_fingerprint", &m.data_fingerprint, source));
    AUGUR_RETURN_IF_ERROR(GetField(*prov, "tokenizer_fingerprint", &m.tokenizer_fingerprint, source));
    AUGUR_RETURN_IF_ERROR(GetField(*prov, "command_line", &m.command_line, source));
    AUGUR_RETURN_IF_ERROR(GetField(*prov, "version", &m.version, source));
  }
  auto extra = j.find("extra");
  if (extra != j.end() && !extra->is_null()) {
    if (!extra->is_object()) return Bad(source, "'extra' is not a JSON object");
    m.extra = *extra;
  }
  return m;
}

// ---- save ---------------------------------------------------------------------------------

absl::Status SaveCheckpoint(LlamaModel& model, const AugurMeta& meta, const std::string& dir,
                            const SaveOptions& opts) {
  AUGUR_ASSIGN_OR_RETURN(torch::Dtype dtype, FloatDtype(opts.dtype, dir));
  if (opts.max_shard_bytes < 0)
    return Bad(dir, absl::StrCat("max_shard_bytes ", opts.max_shard_bytes, " is negative"));
  if (!opts.tokenizer_model.empty() && !FileExists(opts.tokenizer_model))
    return Bad(dir, absl::StrCat("tokenizer model ", opts.tokenizer_model, " does not exist"));
  if (FileExists(dir)) return Bad(dir, "exists and is a file, not a directory");
  AUGUR_RETURN_IF_ERROR(MakeDirs(dir));

  torch::NoGradGuard no_grad;
  NamedTensors tensors;
  for (const auto& p : model->named_parameters(/*recurse=*/true))
    tensors.emplace_back(p.key(), p.value().detach().to(torch::kCPU, dtype).contiguous());
  // Weights first and metadata last: config.json and augur.json describe weights that are
  // already in place.
  AUGUR_RETURN_IF_ERROR(WriteSafetensorsCheckpoint(dir, tensors, opts.max_shard_bytes));
  // The tokenizer with its tokenizer_config.json (transformers needs it to encode as augur
  // does), special_tokens_map.json and generation_config.json when they sit beside it.
  if (!opts.tokenizer_model.empty()) AUGUR_RETURN_IF_ERROR(CopyTokenizerFiles(opts.tokenizer_model, dir));
  ModelConfig cfg = model->config();
  cfg.torch_dtype = opts.dtype;
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, kConfigName), cfg.ToJson().dump(2) + "\n"));
  AUGUR_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(dir, kMetaName), meta.ToJson().dump(2) + "\n"));
  return absl::OkStatus();
}

// ---- load ---------------------------------------------------------------------------------

absl::StatusOr<AugurMeta> ReadAugurMeta(const std::string& dir) {
  const std::string meta_path = JoinPath(dir, kMetaName);
  if (!FileExists(meta_path)) return AugurMeta{};
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(meta_path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(meta_path, "not valid JSON");
  return AugurMeta::FromJson(j, meta_path);
}

absl::StatusOr<LoadedCheckpoint> LoadCheckpoint(const std::string& dir, torch::Device device,
                                                torch::Dtype dtype) {
  if (!IsDirectory(dir)) {
    if (FileExists(dir)) return Bad(dir, "is a file; expected a model directory");
    return absl::NotFoundError(absl::StrCat("checkpoint: ", dir, ": no such directory"));
  }
  if (dtype != torch::kFloat32 && dtype != torch::kFloat16 && dtype != torch::kBFloat16)
    return Bad(dir, absl::StrCat("cannot load into dtype ", TorchDtypeName(dtype),
                                 " (use float32, float16 or bfloat16)"));
  const std::string config_path = JoinPath(dir, kConfigName);
  if (!FileExists(config_path))
    return Bad(dir, "no config.json; not a Hugging Face model directory");
  AUGUR_ASSIGN_OR_RETURN(ModelConfig cfg, ModelConfig::FromFile(config_path));

  LoadedCheckpoint out;
  out.dir = dir;
  AUGUR_ASSIGN_OR_RETURN(out.meta, ReadAugurMeta(dir));
  if (!out.meta.quantization.empty())
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: ", dir, ": is quantized (", out.meta.quantization,
        "); LoadCheckpoint reads unquantized checkpoints only"));

  if (!SafetensorsCheckpoint::Exists(dir)) {
    if (FileExists(JoinPath(dir, "pytorch_model.bin")) || FileExists(JoinPath(dir, "pytorch_model.bin.index.json")))
      return Bad(dir, "holds pytorch_model.bin only; augur reads safetensors (save_pretrained(..., "
                      "safe_serialization=True))");
    return Bad(dir, absl::StrCat("no ", kSafetensorsSingleName, " or ", kSafetensorsIndexName));
  }
  AUGUR_ASSIGN_OR_RETURN(SafetensorsCheckpoint weights, SafetensorsCheckpoint::Open(dir));
  const std::string weights_name =
      JoinPath(dir, weights.sharded() ? kSafetensorsIndexName : kSafetensorsSingleName);

  torch::NoGradGuard no_grad;
  LlamaModel model(cfg);
  model->to(dtype);
  auto params = model->named_parameters(/*recurse=*/true);

  // Check names, shapes and dtypes of everything before reading any data.
  std::set<std::string> expected;
  std::vector<std::string> missing, unexpected;
  for (const auto& p : params) {
    expected.insert(p.key());
    if (!weights.Find(p.key())) missing.push_back(p.key());
  }
  if (!missing.empty())
    return Bad(weights_name, absl::StrCat("missing ", missing.size() == 1 ? "tensor " : "tensors ",
                                          NameList(missing), " that config.json implies"));
  for (const auto& name : weights.names())
    if (!expected.count(name) && !IgnorableExtra(name, cfg)) unexpected.push_back(name);
  if (!unexpected.empty())
    return Bad(weights_name, absl::StrCat("unexpected ", unexpected.size() == 1 ? "tensor " : "tensors ",
                                          NameList(unexpected), " (not in a ", cfg.architecture,
                                          " with this config.json)"));
  for (const auto& p : params) {
    const StTensorInfo* info = weights.Find(p.key());
    const std::string& file = weights.FileOf(p.key())->path();
    if (info->shape != p.value().sizes().vec())
      return Bad(file, absl::StrCat("tensor ", p.key(), " has shape ", ShapeString(info->shape),
                                    " but config.json implies ", ShapeString(p.value().sizes())));
    if (info->dtype != StDtype::kF32 && info->dtype != StDtype::kF16 && info->dtype != StDtype::kBF16 &&
        info->dtype != StDtype::kF64)
      return Bad(file, absl::StrCat("tensor ", p.key(), " has dtype ", StDtypeName(info->dtype),
                                    ", not a float type (quantized weights need the quantized loader)"));
  }
  for (auto& p : params) {
    const SafetensorsFile* f = weights.FileOf(p.key());
    p.value().copy_(f->Read(*f->Find(p.key())));  // converts to the model's dtype
  }
  model->to(device);
  out.model = model;
  out.tokenizer_model = FindTokenizerFile(dir);
  return out;
}

}  // namespace augur
