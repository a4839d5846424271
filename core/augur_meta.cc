// augur.json (AugurMeta, core/checkpoint.h): reading and writing it needs no LibTorch, so it
// lives apart from the checkpoint loader and the fuzz harnesses (tests/fuzz/) build it alone.
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/eagle_config.h"
#include "core/fs.h"
#include "core/one_line.h"

// The CLI defines the real version; the library falls back to the project's.
#ifndef AUGUR_VERSION_STRING
#define AUGUR_VERSION_STRING "0.1.0"
#endif

namespace augur {
namespace {

using json = nlohmann::json;

constexpr const char* kMetaName = "augur.json";
constexpr int kMetaFormatVersion = 1;

absl::Status Bad(const std::string& where, const std::string& problem) {
  return absl::InvalidArgumentError(OneLine(absl::StrCat("checkpoint: ", where, ": ", problem)));
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

absl::StatusOr<AugurMeta> ReadAugurMeta(const std::string& dir) {
  const std::string meta_path = JoinPath(dir, kMetaName);
  if (!FileExists(meta_path)) return AugurMeta{};
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(meta_path));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(meta_path, "not valid JSON");
  return AugurMeta::FromJson(j, meta_path);
}

}  // namespace augur
