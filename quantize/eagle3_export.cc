#include "quantize/eagle3_export.h"

#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "core/eagle_config.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "runtime/qweight.h"
#include "runtime/scheme.h"

namespace augur::eagle3 {
namespace {

using nlohmann::json;

constexpr char kComponent[] = "eagle3 export";
constexpr char kExportFormat[] = "eagle3";  // augur.json extra.export.format of an export

absl::Status Err(absl::StatusCode code, const std::string& where, const std::string& problem) {
  return absl::Status(code, absl::StrCat(kComponent, ": ", where, ": ", problem));
}
absl::Status Invalid(const std::string& where, const std::string& problem) {
  return Err(absl::StatusCode::kInvalidArgument, where, problem);
}

// A positive integer field of `j` (an object), or an error naming `where` and the key.
absl::StatusOr<int64_t> PositiveInt(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Invalid(where, absl::StrCat("'", key, "' is missing"));
  if (!it->is_number_integer() || it->get<int64_t>() <= 0)
    return Invalid(where, absl::StrCat("'", key, "' must be a positive integer, not ", it->dump()));
  return it->get<int64_t>();
}

absl::StatusOr<json> ReadJson(const std::string& path) {
  if (!FileExists(path)) return Err(absl::StatusCode::kNotFound, path, "missing");
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Invalid(path, "not a JSON object");
  return j;
}

// extra.eagle of augur.json: the target layers the features come from and the target's sizes.
absl::Status ReadEagleExtra(const AugurMeta& meta, const std::string& where, Drafter* d) {
  auto it = meta.extra.find("eagle");
  if (it == meta.extra.end() || !it->is_object())
    return Invalid(where, "extra.eagle is missing (target_layers, target_hidden_size, target_num_layers, "
                          "target_vocab_size)");
  const json& e = *it;
  const std::string ewhere = absl::StrCat(where, " extra.eagle");
  AUGUR_ASSIGN_OR_RETURN(d->dims.target_hidden, PositiveInt(e, "target_hidden_size", ewhere));
  AUGUR_ASSIGN_OR_RETURN(d->target_num_layers, PositiveInt(e, "target_num_layers", ewhere));
  AUGUR_ASSIGN_OR_RETURN(d->dims.target_vocab, PositiveInt(e, "target_vocab_size", ewhere));
  auto layers = e.find("target_layers");
  if (layers == e.end() || !layers->is_array() || layers->size() != 3)
    return Invalid(ewhere, "'target_layers' must be an array of 3 layer ids (low, mid, high)");
  for (const json& l : *layers) {
    if (!l.is_number_integer()) return Invalid(ewhere, absl::StrCat("'target_layers' ", layers->dump(), " holds a non-integer"));
    d->target_layers.push_back(l.get<int64_t>());
  }
  // h_i enters target layer i, so i < target_num_layers; llama.cpp and SGLang need three distinct
  // taps in order (SGLang's ids are one lower: its id j is the output of layer j).
  for (size_t k = 0; k < 3; ++k) {
    const int64_t l = d->target_layers[k];
    if (l < 0 || l >= d->target_num_layers)
      return Invalid(ewhere, absl::StrCat("target layer ", l, " is outside [0, ", d->target_num_layers,
                                          ") (the id of the target layer whose input is tapped)"));
    if (k > 0 && l <= d->target_layers[k - 1])
      return Invalid(ewhere, absl::StrCat("'target_layers' ", layers->dump(), " must be strictly increasing"));
  }
  return absl::OkStatus();
}

// config.json: the drafter layer's sizes and settings (augur's own, or an export's serving config).
absl::Status ReadConfig(const std::string& dir, Drafter* d) {
  const std::string path = JoinPath(dir, "config.json");
  AUGUR_ASSIGN_OR_RETURN(json c, ReadJson(path));
  AUGUR_ASSIGN_OR_RETURN(d->dims.hidden, PositiveInt(c, "hidden_size", path));
  AUGUR_ASSIGN_OR_RETURN(d->dims.intermediate, PositiveInt(c, "intermediate_size", path));
  AUGUR_ASSIGN_OR_RETURN(d->dims.heads, PositiveInt(c, "num_attention_heads", path));
  AUGUR_ASSIGN_OR_RETURN(d->dims.kv_heads, PositiveInt(c, "num_key_value_heads", path));
  AUGUR_ASSIGN_OR_RETURN(d->max_position_embeddings, PositiveInt(c, "max_position_embeddings", path));
  if (c.contains("head_dim") && !c["head_dim"].is_null()) {
    AUGUR_ASSIGN_OR_RETURN(d->dims.head_dim, PositiveInt(c, "head_dim", path));
  } else {
    if (d->dims.hidden % d->dims.heads != 0)
      return Invalid(path, absl::StrCat("no head_dim, and hidden_size ", d->dims.hidden,
                                        " is not a multiple of num_attention_heads ", d->dims.heads));
    d->dims.head_dim = d->dims.hidden / d->dims.heads;
  }
  if (d->dims.heads % d->dims.kv_heads != 0)
    return Invalid(path, absl::StrCat("num_attention_heads ", d->dims.heads, " is not a multiple of num_key_value_heads ",
                                      d->dims.kv_heads));
  if (d->dims.head_dim % 2 != 0) return Invalid(path, absl::StrCat("head_dim ", d->dims.head_dim, " is odd (rotary pairs)"));
  auto number = [&](const char* key, double* out, bool required) -> absl::Status {
    auto it = c.find(key);
    if (it == c.end() || it->is_null())
      return required ? Invalid(path, absl::StrCat("'", key, "' is missing")) : absl::OkStatus();
    if (!it->is_number() || it->get<double>() <= 0)
      return Invalid(path, absl::StrCat("'", key, "' must be a positive number, not ", it->dump()));
    *out = it->get<double>();
    return absl::OkStatus();
  };
  AUGUR_RETURN_IF_ERROR(number("rms_norm_eps", &d->rms_norm_eps, /*required=*/true));
  AUGUR_RETURN_IF_ERROR(number("rope_theta", &d->rope_theta, /*required=*/false));
  if (c.contains("num_hidden_layers") && c["num_hidden_layers"] != 1)
    return Invalid(path, absl::StrCat("num_hidden_layers ", c["num_hidden_layers"].dump(),
                                      ": an EAGLE-3 drafter has one decoder layer"));
  if (c.contains("rope_scaling") && !c["rope_scaling"].is_null())
    return Invalid(path, "rope_scaling is not supported by the EAGLE-3 export (plain rotary only)");
  if (c.contains("hidden_act") && c["hidden_act"] != "silu")
    return Invalid(path, absl::StrCat("hidden_act ", c["hidden_act"].dump(), " (only silu)"));
  for (auto [key, out] : {std::pair<const char*, int64_t*>{"bos_token_id", &d->bos_token_id},
                          std::pair<const char*, int64_t*>{"eos_token_id", &d->eos_token_id}}) {
    auto it = c.find(key);
    if (it != c.end() && it->is_number_integer()) *out = it->get<int64_t>();
  }
  return absl::OkStatus();
}

std::string Stem(const std::string& weight_name) {  // "fc.weight" -> "fc"
  return weight_name.substr(0, weight_name.size() - std::string(".weight").size());
}

// One linear of a quantized checkpoint (NAME.qweight / NAME.scales / NAME.zeros), dequantized.
absl::StatusOr<at::Tensor> ReadQuantizedLinear(const SafetensorsCheckpoint& st, const TensorSpec& spec,
                                               const QuantScheme& scheme, const std::string& dir,
                                               std::set<std::string>* used) {
  const std::string stem = Stem(spec.name);
  QuantizedWeight w;
  w.scheme = scheme;
  w.out = spec.shape[0];
  w.in = spec.shape[1];
  AUGUR_ASSIGN_OR_RETURN(w.qweight, st.Read(stem + ".qweight"));
  AUGUR_ASSIGN_OR_RETURN(w.scales, st.Read(stem + ".scales"));
  used->insert(stem + ".qweight");
  used->insert(stem + ".scales");
  if (scheme.bits == 4) {
    AUGUR_ASSIGN_OR_RETURN(w.zeros, st.Read(stem + ".zeros"));
    used->insert(stem + ".zeros");
  }
  AUGUR_RETURN_IF_ERROR(ValidateQuantized(w, absl::StrCat(kComponent, ": ", dir, ": ", stem)));
  return Dequantize(w);
}

absl::StatusOr<at::Tensor> ReadPlain(const SafetensorsCheckpoint& st, const TensorSpec& spec, const std::string& dir) {
  const StTensorInfo* info = st.Find(spec.name);
  if (info == nullptr)
    return Err(absl::StatusCode::kNotFound, dir, absl::StrCat("tensor ", spec.name, " is missing (", spec.role, ")"));
  if (info->shape != spec.shape)
    return Invalid(dir, absl::StrCat("tensor ", spec.name, " has shape ", ShapeString(info->shape), " but ",
                                     spec.symbolic, " = ", ShapeString(spec.shape), " is expected"));
  const bool is_float = info->dtype == StDtype::kF32 || info->dtype == StDtype::kF16 || info->dtype == StDtype::kBF16;
  const bool ok = spec.dtype == StDtype::kF32 ? is_float
                  : spec.dtype == StDtype::kI64 ? (info->dtype == StDtype::kI64 || info->dtype == StDtype::kI32)
                                                : info->dtype == spec.dtype;
  if (!ok)
    return Invalid(dir, absl::StrCat("tensor ", spec.name, " has dtype ", StDtypeName(info->dtype), "; ",
                                     StDtypeName(spec.dtype), " is expected"));
  AUGUR_ASSIGN_OR_RETURN(at::Tensor t, st.Read(spec.name));
  return t.to(StDtypeToTorch(spec.dtype)).contiguous();
}

// d2t maps draft id i to target id i + d2t[i]; t2d marks the target ids that have a draft id.
absl::Status CheckVocabMap(const Drafter& d, const at::Tensor& d2t, const at::Tensor& t2d, const std::string& dir) {
  const int64_t nd = d.dims.draft_vocab, v = d.dims.target_vocab;
  const int64_t* off = d2t.data_ptr<int64_t>();
  std::vector<uint8_t> seen(static_cast<size_t>(v), 0);
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t target = i + off[i];
    if (target < 0 || target >= v)
      return Invalid(dir, absl::StrCat("d2t[", i, "] = ", off[i], " maps draft id ", i, " to target id ", target,
                                       ", outside the target vocabulary [0, ", v, ")"));
    if (seen[static_cast<size_t>(target)])
      return Invalid(dir, absl::StrCat("d2t maps two draft ids to target id ", target, " (draft id ", i, ")"));
    seen[static_cast<size_t>(target)] = 1;
  }
  const bool* mask = t2d.data_ptr<bool>();
  for (int64_t t = 0; t < v; ++t)
    if (mask[t] != static_cast<bool>(seen[static_cast<size_t>(t)]))
      return Invalid(dir, absl::StrCat("t2d[", t, "] is ", mask[t] ? "true" : "false", " but d2t ",
                                       seen[static_cast<size_t>(t)] ? "maps a draft id to" : "never reaches",
                                       " target id ", t));
  return absl::OkStatus();
}

// Anything at `path` (core/fs.h's FileExists is true for regular files only).
bool PathExists(const std::string& path) {
  struct stat sb;
  return ::lstat(path.c_str(), &sb) == 0;
}

std::string CanonicalPath(const std::string& path) {
  char buf[4096];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// An existing --out may be replaced only when it is empty or an earlier EAGLE-3 export.
absl::Status CheckReplaceable(const std::string& out_dir) {
  if (!PathExists(out_dir)) return absl::OkStatus();
  if (!IsDirectory(out_dir)) return Invalid(out_dir, "exists and is not a directory");
  if (ListDir(out_dir).empty()) return absl::OkStatus();
  auto meta = ReadJson(JoinPath(out_dir, "augur.json"));
  const bool is_export = meta.ok() && meta->contains("extra") && (*meta)["extra"].is_object() &&
                         (*meta)["extra"].contains("export") && (*meta)["extra"]["export"].is_object() &&
                         (*meta)["extra"]["export"].value("format", "") == kExportFormat;
  if (!is_export)
    return Err(absl::StatusCode::kAlreadyExists, out_dir,
               "exists and is not an EAGLE-3 export; remove it or choose another --out");
  return absl::OkStatus();
}

}  // namespace

std::vector<TensorSpec> Layout(const Dims& m) {
  const int64_t d = m.hidden, dt = m.target_hidden, q = m.heads * m.head_dim, kv = m.kv_heads * m.head_dim;
  const char* mid = "midlayer.";
  auto F = [](std::string name, std::vector<int64_t> shape, std::string sym, bool linear, std::string role) {
    return TensorSpec{std::move(name), StDtype::kF32, std::move(shape), std::move(sym), linear, std::move(role)};
  };
  return {
      F("fc.weight", {d, 3 * dt}, "[d, 3*dt]", true, "fuses the target's low, mid and high hidden states"),
      F(absl::StrCat(mid, "input_layernorm.weight"), {d}, "[d]", false, "RMSNorm of the token embedding"),
      F(absl::StrCat(mid, "hidden_norm.weight"), {d}, "[d]", false, "RMSNorm of the fused feature g"),
      F(absl::StrCat(mid, "self_attn.q_proj.weight"), {q, 2 * d}, "[H*hd, 2*d]", true, "query projection of [emb; g]"),
      F(absl::StrCat(mid, "self_attn.k_proj.weight"), {kv, 2 * d}, "[KV*hd, 2*d]", true, "key projection of [emb; g]"),
      F(absl::StrCat(mid, "self_attn.v_proj.weight"), {kv, 2 * d}, "[KV*hd, 2*d]", true, "value projection of [emb; g]"),
      F(absl::StrCat(mid, "self_attn.o_proj.weight"), {d, q}, "[d, H*hd]", true, "attention output projection"),
      F(absl::StrCat(mid, "post_attention_layernorm.weight"), {d}, "[d]", false, "RMSNorm before the MLP"),
      F(absl::StrCat(mid, "mlp.gate_proj.weight"), {m.intermediate, d}, "[ff, d]", true, "SwiGLU gate"),
      F(absl::StrCat(mid, "mlp.up_proj.weight"), {m.intermediate, d}, "[ff, d]", true, "SwiGLU up"),
      F(absl::StrCat(mid, "mlp.down_proj.weight"), {d, m.intermediate}, "[d, ff]", true, "SwiGLU down"),
      F("norm.weight", {d}, "[d]", false, "final RMSNorm before the head"),
      F("lm_head.weight", {m.draft_vocab, d}, "[Nd, d]", true, "logits over the draft vocabulary"),
      TensorSpec{"d2t", StDtype::kI64, {m.draft_vocab}, "[Nd]", false, "target id = draft id i + d2t[i]"},
      TensorSpec{"t2d", StDtype::kBool, {m.target_vocab}, "[V]", false, "true where the target id has a draft id"},
  };
}

absl::StatusOr<Drafter> ReadDrafter(const std::string& dir) {
  torch::NoGradGuard no_grad;
  if (!IsDirectory(dir)) return Err(absl::StatusCode::kNotFound, dir, "not a directory");
  Drafter d;
  AUGUR_ASSIGN_OR_RETURN(d.meta, ReadAugurMeta(dir));
  if (d.meta.kind != kKindEagleDrafter)
    return Err(absl::StatusCode::kFailedPrecondition, dir,
               absl::StrCat("augur.json kind is '", d.meta.kind, "', not '", kKindEagleDrafter,
                            "'; --format eagle3 exports a checkpoint of `augur distill eagle`"));
  const std::string meta_where = JoinPath(dir, "augur.json");
  AUGUR_RETURN_IF_ERROR(ReadEagleExtra(d.meta, meta_where, &d));
  AUGUR_RETURN_IF_ERROR(ReadConfig(dir, &d));
  if (d.dims.hidden != d.dims.target_hidden)
    return Invalid(dir, absl::StrCat("hidden_size ", d.dims.hidden, " differs from the target's ", d.dims.target_hidden,
                                     ": the drafter embeds tokens with the target's embedding, so they must match"));

  if (!SafetensorsCheckpoint::Exists(dir))
    return Err(absl::StatusCode::kNotFound, dir, "no model.safetensors (or index)");
  AUGUR_ASSIGN_OR_RETURN(SafetensorsCheckpoint st, SafetensorsCheckpoint::Open(dir));
  const StTensorInfo* d2t_info = st.Find("d2t");
  if (d2t_info == nullptr)
    return Err(absl::StatusCode::kNotFound, dir, "tensor d2t is missing (the draft -> target vocabulary map)");
  if (d2t_info->shape.size() != 1 || d2t_info->shape[0] <= 0 || d2t_info->shape[0] > d.dims.target_vocab)
    return Invalid(dir, absl::StrCat("tensor d2t has shape ", ShapeString(d2t_info->shape), "; [Nd] with 0 < Nd <= V = ",
                                     d.dims.target_vocab, " is expected"));
  d.dims.draft_vocab = d2t_info->shape[0];

  d.source_quantization = d.meta.quantization;
  QuantScheme scheme;
  if (!d.source_quantization.empty()) {
    AUGUR_ASSIGN_OR_RETURN(scheme, ParseScheme(d.source_quantization));
    for (const auto& file : st.files()) {
      auto it = file->metadata().find("augur_quantization");
      const std::string in_file = it == file->metadata().end() ? "" : it->second;
      if (in_file != d.source_quantization)
        return Invalid(file->path(), absl::StrCat("__metadata__ augur_quantization '", in_file,
                                                  "' differs from augur.json's '", d.source_quantization, "'"));
    }
  }

  std::set<std::string> used;
  for (const TensorSpec& spec : Layout(d.dims)) {
    at::Tensor t;
    if (spec.linear && !d.source_quantization.empty() && st.Find(Stem(spec.name) + ".qweight") != nullptr) {
      AUGUR_ASSIGN_OR_RETURN(t, ReadQuantizedLinear(st, spec, scheme, dir, &used));
    } else {
      AUGUR_ASSIGN_OR_RETURN(t, ReadPlain(st, spec, dir));
      used.insert(spec.name);
    }
    if (spec.dtype == StDtype::kF32 && !torch::isfinite(t).all().item<bool>())
      return Invalid(dir, absl::StrCat("tensor ", spec.name, " has non-finite values"));
    d.tensors.emplace_back(spec.name, t);
  }
  for (const std::string& name : st.names())
    if (!used.count(name))
      return Invalid(dir, absl::StrCat("unexpected tensor ", name,
                                       name.find("embed_tokens") != std::string::npos
                                           ? " (the export has no embedding: engines use the target's)"
                                           : " (not part of the EAGLE-3 layout, docs/FORMATS.md)"));
  // Layout() ends with d2t, t2d.
  AUGUR_RETURN_IF_ERROR(CheckVocabMap(d, d.tensors[d.tensors.size() - 2].second, d.tensors.back().second, dir));
  return d;
}

json ServingConfig(const Drafter& d) {
  // Top level: vLLM and llama.cpp's converter read eagle_aux_hidden_state_layer_ids there, in
  // the "input of layer i" convention augur uses. SGLang reads only eagle_config's copy and
  // adds 1 to each id (its id j is the output of layer j), so that copy is one lower.
  json sglang_ids = json::array();
  for (int64_t l : d.target_layers) sglang_ids.push_back(l - 1);
  json c = {
      {"architectures", {"LlamaForCausalLMEagle3"}},
      {"model_type", "llama"},
      {"hidden_size", d.dims.hidden},
      {"intermediate_size", d.dims.intermediate},
      {"num_attention_heads", d.dims.heads},
      {"num_key_value_heads", d.dims.kv_heads},
      {"head_dim", d.dims.head_dim},
      {"num_hidden_layers", 1},
      {"rms_norm_eps", d.rms_norm_eps},
      {"rope_theta", d.rope_theta},
      {"max_position_embeddings", d.max_position_embeddings},
      {"vocab_size", d.dims.target_vocab},
      {"draft_vocab_size", d.dims.draft_vocab},
      {"target_hidden_size", d.dims.target_hidden},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"tie_word_embeddings", false},
      {"torch_dtype", "float32"},
      {"eagle_aux_hidden_state_layer_ids", d.target_layers},
      {"eagle_config", {{"eagle_aux_hidden_state_layer_ids", sglang_ids}, {"use_aux_hidden_state", true}}},
      // augur's own loader checks a target against it; the engines ignore it.
      {"augur_target_num_layers", d.target_num_layers},
  };
  if (d.bos_token_id >= 0) c["bos_token_id"] = d.bos_token_id;
  if (d.eos_token_id >= 0) c["eos_token_id"] = d.eos_token_id;
  return c;
}

absl::StatusOr<ExportSummary> Export(const std::string& model_dir, const std::string& out_dir) {
  if (out_dir.empty()) return Invalid("--out", "is empty");
  AUGUR_ASSIGN_OR_RETURN(Drafter d, ReadDrafter(model_dir));
  if (PathExists(out_dir) && CanonicalPath(out_dir) == CanonicalPath(model_dir))
    return Invalid(out_dir, "is the checkpoint being exported; choose another --out");
  AUGUR_RETURN_IF_ERROR(CheckReplaceable(out_dir));

  std::string dest = out_dir;  // without trailing slashes, so that the staging name is a sibling
  while (dest.size() > 1 && dest.back() == '/') dest.pop_back();
  const size_t slash = dest.rfind('/');
  const std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : dest.substr(0, slash));
  AUGUR_RETURN_IF_ERROR(MakeDirs(parent));
  const std::string stage = TempPathFor(dest);
  RemoveTree(stage);
  AUGUR_RETURN_IF_ERROR(MakeDirs(stage));
  auto fail = [&](absl::Status st) {
    RemoveTree(stage);
    return st;
  };

  ExportSummary summary;
  summary.tensors = Layout(d.dims);
  summary.source_quantization = d.source_quantization;
  const std::string st_path = JoinPath(stage, kSafetensorsSingleName);
  if (auto st = WriteSafetensors(st_path, d.tensors); !st.ok()) return fail(st);
  if (auto st = WriteFileAtomic(JoinPath(stage, "config.json"), ServingConfig(d).dump(2) + "\n"); !st.ok())
    return fail(st);
  AugurMeta meta = d.meta;
  meta.quantization.clear();  // the export holds float32 weights
  meta.extra["export"] = {{"format", kExportFormat}, {"source", CanonicalPath(model_dir)},
                          {"source_quantization", d.source_quantization}};
  if (auto st = WriteFileAtomic(JoinPath(stage, "augur.json"), meta.ToJson().dump(2) + "\n"); !st.ok())
    return fail(st);
  if (const std::string tok = FindTokenizerFile(model_dir); !tok.empty())
    if (auto st = CopyTokenizerFiles(tok, stage); !st.ok()) return fail(st);
  if (struct stat sb; stat(st_path.c_str(), &sb) == 0) summary.safetensors_bytes = static_cast<uint64_t>(sb.st_size);

  // Swap into place: an earlier export moves aside first and is removed once the new one is in.
  std::string old;
  if (PathExists(dest)) {
    old = absl::StrCat(dest, ".old.", getpid());
    RemoveTree(old);
    if (std::rename(dest.c_str(), old.c_str()) != 0)
      return fail(Err(absl::StatusCode::kInternal, dest,
                      absl::StrCat("cannot move the earlier export aside to ", old, ": ", std::strerror(errno))));
  }
  if (std::rename(stage.c_str(), dest.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    if (!old.empty()) std::rename(old.c_str(), dest.c_str());
    return fail(Err(absl::StatusCode::kInternal, dest,
                    absl::StrCat("cannot rename the staged export ", stage, " into place: ", why)));
  }
  if (!old.empty()) RemoveTree(old);
  return summary;
}

}  // namespace augur::eagle3
