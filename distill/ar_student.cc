// The AR student: its config (preset, config.json, checkpoint, or the target's shape) and
// its initialisation from the target's embeddings, head and a subset of layers.
#include <torch/torch.h>

#include <absl/strings/str_join.h>

#include <cmath>

#include "core/fs.h"
#include "distill/ar_distill.h"

namespace augur::distill {
namespace {

std::string Shape(const at::Tensor& t) { return "[" + absl::StrJoin(t.sizes(), ", ") + "]"; }

bool IsCheckpointDir(const std::string& spec) {
  return IsDirectory(spec) && FileExists(spec + "/config.json") &&
         (FileExists(spec + "/model.safetensors") || FileExists(spec + "/model.safetensors.index.json"));
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ResolveInitLayers(const std::vector<int64_t>& given, int64_t student_layers,
                                                      int64_t target_layers) {
  if (!given.empty()) {
    if (static_cast<int64_t>(given.size()) > student_layers)
      return absl::InvalidArgumentError(absl::StrCat("distill ar: --init-layers names ", given.size(),
                                                     " layers but the student has ", student_layers));
    for (int64_t l : given)
      if (l < 0 || l >= target_layers)
        return absl::InvalidArgumentError(absl::StrCat("distill ar: --init-layers: layer ", l,
                                                       " is outside the target's layers 0..", target_layers - 1));
    return given;
  }
  std::vector<int64_t> layers(student_layers);
  for (int64_t j = 0; j < student_layers; ++j) {
    if (student_layers == target_layers) {
      layers[j] = j;
    } else if (student_layers == 1) {
      layers[j] = 0;
    } else {  // evenly spaced, first and last included
      layers[j] = std::llround(static_cast<double>(j) * static_cast<double>(target_layers - 1) /
                               static_cast<double>(student_layers - 1));
    }
    if (layers[j] >= target_layers) layers[j] = target_layers - 1;
  }
  return layers;
}

absl::StatusOr<ModelConfig> ResolveStudentConfig(const std::string& spec, const ModelConfig& target,
                                                 const std::vector<int64_t>& init_layers,
                                                 std::string* init_checkpoint) {
  init_checkpoint->clear();
  if (spec == "target") {
    ModelConfig cfg = target;
    if (!init_layers.empty()) cfg.num_hidden_layers = static_cast<int64_t>(init_layers.size());
    return cfg;
  }
  if (IsCheckpointDir(spec)) *init_checkpoint = spec;
  return ResolveModelConfig(spec);
}

absl::Status InitFromTarget(LlamaModelImpl& student, LlamaModelImpl& target, const std::vector<int64_t>& layers) {
  const ModelConfig& s = student.config();
  const ModelConfig& t = target.config();
  // Equal tensor shapes are not enough when heads are split differently; name the field.
  struct Field {
    const char* name;
    int64_t student, target;
  };
  const Field fields[] = {{"vocab_size", s.vocab_size, t.vocab_size},
                          {"hidden_size", s.hidden_size, t.hidden_size},
                          {"intermediate_size", s.intermediate_size, t.intermediate_size},
                          {"num_attention_heads", s.num_attention_heads, t.num_attention_heads},
                          {"num_key_value_heads", s.num_key_value_heads, t.num_key_value_heads},
                          {"head_dim", s.head_dim_or_default(), t.head_dim_or_default()}};
  for (const auto& f : fields) {
    if (f.name != std::string("vocab_size") && f.name != std::string("hidden_size") && layers.empty()) continue;
    if (f.student != f.target)
      return absl::InvalidArgumentError(absl::StrCat(
          "distill ar: --init target: the student's ", f.name, " is ", f.student, " but the target's is ", f.target,
          "; copying needs the target's shapes (e.g. --student target --init-layers 0,", t.num_hidden_layers - 1,
          ", or a config.json with the target's width)"));
  }
  if (s.attention_bias != t.attention_bias)
    return absl::InvalidArgumentError("distill ar: --init target: attention_bias differs between student and target");

  torch::NoGradGuard no_grad;
  auto sp = student.named_parameters();
  const auto tp = target.named_parameters();
  auto copy = [&](const std::string& dst, const std::string& src) -> absl::Status {
    at::Tensor* d = sp.find(dst);
    const at::Tensor* from = tp.find(src);
    if (d == nullptr) return absl::InternalError(absl::StrCat("distill ar: the student has no tensor ", dst));
    if (from == nullptr) return absl::InternalError(absl::StrCat("distill ar: the target has no tensor ", src));
    if (d->sizes() != from->sizes())
      return absl::InvalidArgumentError(absl::StrCat("distill ar: --init target: student ", dst, " is ", Shape(*d),
                                                     " but the target's ", src, " is ", Shape(*from)));
    d->copy_(*from);
    return absl::OkStatus();
  };
  AUGUR_RETURN_IF_ERROR(copy("model.embed_tokens.weight", "model.embed_tokens.weight"));
  AUGUR_RETURN_IF_ERROR(copy("model.norm.weight", "model.norm.weight"));
  // A tied student's head is its embedding (copied above); an untied one takes the
  // target's head, or the target's embedding when the target is tied.
  if (!s.tie_word_embeddings)
    AUGUR_RETURN_IF_ERROR(copy("lm_head.weight", t.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
  for (size_t j = 0; j < layers.size(); ++j) {
    const std::string dst = absl::StrCat("model.layers.", j, ".");
    const std::string src = absl::StrCat("model.layers.", layers[j], ".");
    for (const auto& item : sp) {
      if (item.key().rfind(dst, 0) != 0) continue;
      AUGUR_RETURN_IF_ERROR(copy(item.key(), src + item.key().substr(dst.size())));
    }
  }
  return absl::OkStatus();
}

}  // namespace augur::distill
