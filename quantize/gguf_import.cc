#include "quantize/gguf_import.h"

#include <absl/strings/match.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cstdio>
#include <set>
#include <vector>

#include "core/bpe_tokenizer.h"
#include "core/checkpoint.h"
#include "core/config.h"
#include "core/fs.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "core/tokenizer.h"
#include "quantize/gguf_export.h"
#include "quantize/gguf_model_meta.h"
#include "quantize/gguf_reader.h"

namespace augur::gguf {
namespace {

using json = nlohmann::json;

json TokenizerConfig(const BpeTokenizer& tok, const GgufBpeVocab& v, const std::string& chat_template) {
  json cfg = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"add_bos_token", v.add_bos},
      {"add_eos_token", false},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", 1000000000},
  };
  auto name = [&](int32_t id) { return tok.IdToToken(id); };
  if (v.bos_id >= 0) cfg["bos_token"] = name(v.bos_id);
  if (v.eos_id >= 0) cfg["eos_token"] = name(v.eos_id);
  if (v.pad_id >= 0) cfg["pad_token"] = name(v.pad_id);
  if (v.unk_id >= 0) cfg["unk_token"] = name(v.unk_id);
  if (!chat_template.empty()) cfg["chat_template"] = chat_template;
  return cfg;
}

}  // namespace

void UnpermuteFromLlamaRope(const float* in, float* out, int64_t n_head, int64_t head_dim, int64_t cols) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t part = 0; part < 2; ++part)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t src = h * head_dim + 2 * i + part, dst = h * head_dim + part * half + i;
        std::copy(in + src * cols, in + (src + 1) * cols, out + dst * cols);
      }
}

absl::StatusOr<ImportSummary> ImportGguf(const std::string& gguf_path, const std::string& out_dir,
                                         const ImportOptions& options) {
  torch::Dtype dtype;
  if (options.dtype == "float32" || options.dtype == "f32") dtype = torch::kFloat32;
  else if (options.dtype == "bfloat16" || options.dtype == "bf16") dtype = torch::kBFloat16;
  else if (options.dtype == "float16" || options.dtype == "f16") dtype = torch::kFloat16;
  else return absl::InvalidArgumentError(absl::StrCat("gguf import: --dtype ", options.dtype, ": not one of f32, bf16, f16"));
  const std::string dtype_name = dtype == torch::kFloat32 ? "float32" : dtype == torch::kBFloat16 ? "bfloat16" : "float16";
  if (FileExists(out_dir) && !IsDirectory(out_dir))
    return absl::AlreadyExistsError(absl::StrCat("gguf import: ", out_dir, ": exists and is a file; choose a new --out"));
  if (IsDirectory(out_dir) && !ListDir(out_dir).empty())
    return absl::AlreadyExistsError(absl::StrCat("gguf import: ", out_dir,
                                                 ": exists and is not empty; choose a new --out (import never overwrites)"));

  AUGUR_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(gguf_path));
  AUGUR_ASSIGN_OR_RETURN(std::string arch_name, f.GetString("general.architecture"));
  // core/config.h's table: the HF architecture it is imported as, and whether llama.cpp's
  // converter permuted its q/k rows (the "llama" family, whose rotary embedding pairs adjacent
  // values; qwen2 uses the NEOX layout, which keeps HF's order).
  const Architecture* arch = FindArchitectureByGguf(arch_name);
  if (!arch)
    return absl::UnimplementedError(absl::StrCat("gguf import: ", gguf_path, ": architecture '", arch_name,
                                                 "' is not supported (augur imports ",
                                                 ArchitectureList(&Architecture::gguf), ")"));

  AUGUR_ASSIGN_OR_RETURN(GgufBpeVocab vocab, ReadGgufBpeVocab(f));
  AUGUR_ASSIGN_OR_RETURN(BpeTokenizer tok, BpeTokenizer::FromGgufVocab(vocab, gguf_path));
  AUGUR_ASSIGN_OR_RETURN(ModelConfig cfg, ReadGgufModelConfig(f, *arch, static_cast<int64_t>(vocab.tokens.size())));
  cfg.bos_token_id = vocab.bos_id;
  cfg.eos_token_id = vocab.eos_id;
  AUGUR_RETURN_IF_ERROR(CheckGgufTensors(f, cfg, *arch));
  std::string chat_template;
  if (f.Has("tokenizer.chat_template")) {
    AUGUR_ASSIGN_OR_RETURN(chat_template, f.GetString("tokenizer.chat_template"));
  }

  ImportSummary summary;
  summary.architecture = cfg.architecture;
  summary.gguf_architecture = arch_name;
  AUGUR_ASSIGN_OR_RETURN(summary.sha256, Sha256File(gguf_path));

  // Everything goes into a sibling temporary directory that is renamed onto out_dir at the end.
  std::string parent = out_dir;
  while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
  const std::string tmp_dir = absl::StrCat(parent, ".tmp.", ::getpid());
  RemoveTree(tmp_dir);
  AUGUR_RETURN_IF_ERROR(MakeDirs(tmp_dir));
  auto fail = [&](absl::Status st) {
    RemoveTree(tmp_dir);
    return st;
  };

  torch::NoGradGuard no_grad;
  NamedTensors tensors;
  const auto expected = ExpectedGgufTensors(cfg, arch->qkv_bias);
  Progress progress("import", static_cast<int64_t>(expected.size()), "tensors");
  int64_t done = 0;
  for (const auto& [gname, hf] : expected) {
    const TensorInfo& info = *f.FindTensor(gname);
    auto values = DequantizeTensor(f, info);
    if (!values.ok()) return fail(values.status());
    summary.types[GgmlTypeName(info.type)] += 1;
    summary.num_parameters += info.num_values();
    const std::vector<int64_t> shape = info.shape();
    at::Tensor t = torch::empty(shape, torch::kFloat32);
    const bool q = absl::EndsWith(hf, "q_proj.weight") || absl::EndsWith(hf, "q_proj.bias");
    const bool k = absl::EndsWith(hf, "k_proj.weight") || absl::EndsWith(hf, "k_proj.bias");
    if (arch->permuted_qk && (q || k)) {
      const int64_t heads = q ? cfg.num_attention_heads : cfg.num_key_value_heads;
      const int64_t cols = shape.size() == 2 ? shape[1] : 1;
      UnpermuteFromLlamaRope(values->data(), t.data_ptr<float>(), heads, cfg.head_dim_or_default(), cols);
    } else {
      std::copy(values->begin(), values->end(), t.data_ptr<float>());
    }
    tensors.emplace_back(hf, dtype == torch::kFloat32 ? t : t.to(dtype));
    if (options.progress) progress.update(++done, gname);
  }
  if (options.progress) progress.finish();
  summary.num_tensors = static_cast<int64_t>(tensors.size());

  if (auto st = WriteSafetensorsCheckpoint(tmp_dir, tensors, 0); !st.ok()) return fail(st);
  tensors.clear();
  auto write = [&](const std::string& name, const std::string& text) {
    return WriteFileAtomic(absl::StrCat(tmp_dir, "/", name), text);
  };
  const std::string tokenizer_json = tok.ToTokenizerJson();
  // The fingerprint recorded is that of the tokenizer.json written here, which is what every
  // later command loads (it identifies the same tokenizer by its vocabulary, merges, Split
  // steps and special tokens).
  auto written = BpeTokenizer::FromTokenizerJson(tokenizer_json, absl::StrCat(out_dir, "/", kTokenizerJsonFile));
  if (!written.ok()) return fail(written.status());
  if (auto st = write(kTokenizerJsonFile, tokenizer_json); !st.ok()) return fail(st);
  if (auto st = write("tokenizer_config.json", TokenizerConfig(tok, vocab, chat_template).dump(2) + "\n"); !st.ok())
    return fail(st);
  json gen = {{"_from_model_config", false}};
  if (vocab.bos_id >= 0) gen["bos_token_id"] = vocab.bos_id;
  if (vocab.eos_id >= 0) gen["eos_token_id"] = vocab.eos_id;
  if (vocab.pad_id >= 0) gen["pad_token_id"] = vocab.pad_id;
  if (auto st = write("generation_config.json", gen.dump(2) + "\n"); !st.ok()) return fail(st);
  cfg.torch_dtype = dtype_name;
  if (auto st = write("config.json", cfg.ToJson().dump(2) + "\n"); !st.ok()) return fail(st);

  AugurMeta meta;
  meta.kind = kKindTarget;
  meta.tokenizer_fingerprint = written->fingerprint();
  meta.command_line = options.command_line;
  json types = json::object();
  for (const auto& [name, n] : summary.types) types[name] = n;
  std::string general_name;
  if (f.Has("general.name")) general_name = f.GetString("general.name").value_or("");
  meta.extra["import"] = {{"source", gguf_path},       {"sha256", summary.sha256},
                          {"gguf_version", f.version()}, {"gguf_architecture", arch_name},
                          {"general_name", general_name}, {"tensor_types", types},
                          {"tokenizer_pre", vocab.pre},  {"dtype", dtype_name}};
  if (auto st = write("augur.json", meta.ToJson().dump(2) + "\n"); !st.ok()) return fail(st);

  if (IsDirectory(out_dir) && ::rmdir(out_dir.c_str()) != 0)
    return fail(absl::InternalError(absl::StrCat("gguf import: ", out_dir, ": cannot replace the empty directory")));
  if (std::rename(tmp_dir.c_str(), out_dir.c_str()) != 0)
    return fail(absl::InternalError(absl::StrCat("gguf import: cannot rename ", tmp_dir, " to ", out_dir)));
  return summary;
}

}  // namespace augur::gguf
