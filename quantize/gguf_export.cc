#include "quantize/gguf_export.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "core/checkpoint.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "quantize/gguf_vocab.h"
#include "quantize/gguf_writer.h"

namespace augur::gguf {
namespace {

constexpr int kGgmlQuantVersion = 2;  // GGML_QNT_VERSION: the Q4_0/Q8_0 layouts written here

std::string Basename(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A quantized augur checkpoint stores packed integers; GGUF's block types are made from
// float weights, so the export must start from the float checkpoint.
absl::Status RefuseQuantized(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/augur.json");
  if (!FileExists(path)) return absl::OkStatus();
  AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("gguf export: ", path, ": not valid JSON"));
  AUGUR_ASSIGN_OR_RETURN(AugurMeta meta, AugurMeta::FromJson(j, path));
  if (!meta.quantization.empty())
    return absl::FailedPreconditionError(absl::StrCat(
        "gguf export: ", dir, ": is a quantized checkpoint (", meta.quantization,
        "); export the float32 checkpoint it was made from (GGUF q8_0/q4_0 are quantized from float weights)"));
  return absl::OkStatus();
}

absl::Status CheckArchitecture(const ModelConfig& c, const std::string& dir) {
  if (c.architecture == "LlamaForCausalLM") return absl::OkStatus();
  if (c.architecture == "MistralForCausalLM") {
    // llama.cpp runs Mistral as "llama", which has no sliding window: only a window that
    // covers the whole context gives the same attention.
    if (c.sliding_window > 0 && c.sliding_window < c.max_position_embeddings)
      return absl::FailedPreconditionError(absl::StrCat(
          "gguf export: ", dir, ": MistralForCausalLM with sliding_window ", c.sliding_window, " < context ",
          c.max_position_embeddings, " cannot be exported as GGUF 'llama' (no sliding window there)"));
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat("gguf export: ", dir, ": architecture ", c.architecture,
                                                    " is not supported by the GGUF export (LlamaForCausalLM and "
                                                    "MistralForCausalLM are)"));
}

// The type a tensor gets (docs/FORMATS.md): 1-D stays f32; 2-D takes the requested type,
// falling back to f16 when a block type does not divide the row, as llama.cpp's converter.
GgmlType ChooseType(const at::Tensor& t, GgmlType wanted, bool* fell_back) {
  *fell_back = false;
  if (t.dim() < 2) return GgmlType::kF32;
  if (IsBlockType(wanted) && t.size(-1) % kQuantBlock != 0) {
    *fell_back = true;
    return GgmlType::kF16;
  }
  return wanted;
}

// tokenizer.ggml.{bos,eos,unknown,padding}_token_id for the ids a vocabulary has (>= 0).
void SetSpecialIds(GgufWriter& w, int32_t bos, int32_t eos, int32_t unk, int32_t pad) {
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", bos},
                                                 {"tokenizer.ggml.eos_token_id", eos},
                                                 {"tokenizer.ggml.unknown_token_id", unk},
                                                 {"tokenizer.ggml.padding_token_id", pad}};
  for (const auto& [key, id] : ids)
    if (id >= 0) w.SetU32(key, static_cast<uint32_t>(id));
}

}  // namespace

uint32_t LlamaFileType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return 0;
    case GgmlType::kF16: return 1;
    case GgmlType::kQ4_0: return 2;
    case GgmlType::kQ8_0: return 7;
    default: break;  // read-only types: export never writes them (IsWritable)
  }
  return 0;
}

std::string GgufTensorName(const std::string& hf) {
  static const std::map<std::string, std::string> kTop = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  static const std::map<std::string, std::string> kLayer = {
      {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},
      {"self_attn.k_proj", "attn_k"},         {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"},    {"post_attention_layernorm", "ffn_norm"},
      {"mlp.gate_proj", "ffn_gate"},          {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"},
  };
  if (auto it = kTop.find(hf); it != kTop.end()) return it->second;
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0) return "";
  const size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos) return "";
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  if (layer.empty() || layer.find_first_not_of("0123456789") != std::string::npos) return "";
  const std::string rest = hf.substr(dot + 1);
  const size_t last = rest.rfind('.');
  if (last == std::string::npos) return "";
  auto it = kLayer.find(rest.substr(0, last));
  const std::string suffix = rest.substr(last + 1);
  if (it == kLayer.end() || (suffix != "weight" && suffix != "bias")) return "";
  return absl::StrCat("blk.", layer, ".", it->second, ".", suffix);
}

void PermuteForLlamaRope(const float* in, float* out, int64_t n_head, int64_t head_dim, int64_t cols) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t part = 0; part < 2; ++part)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t src = h * head_dim + part * half + i, dst = h * head_dim + 2 * i + part;
        std::copy(in + src * cols, in + (src + 1) * cols, out + dst * cols);
      }
}

absl::StatusOr<ExportSummary> ExportGguf(const std::string& model_dir, const std::string& out_path,
                                         const ExportOptions& options) {
  torch::NoGradGuard no_grad;
  AUGUR_RETURN_IF_ERROR(RefuseQuantized(model_dir));
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadCheckpoint(model_dir, torch::kCPU, torch::kFloat32));
  const ModelConfig& c = ckpt.model->config();
  AUGUR_RETURN_IF_ERROR(CheckArchitecture(c, model_dir));
  if (ckpt.tokenizer_model.empty())
    return absl::NotFoundError(absl::StrCat("gguf export: ", model_dir,
                                            ": no tokenizer.model or tokenizer.json; GGUF carries the vocabulary, so the "
                                            "checkpoint needs it"));
  AUGUR_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(ckpt.tokenizer_model));
  const bool bpe = tokenizer.kind() == TokenizerKind::kBpe;
  SpmVocab vocab;
  BpeExportVocab bpe_vocab;
  if (bpe) {
    AUGUR_ASSIGN_OR_RETURN(bpe_vocab, ReadBpeVocab(tokenizer, model_dir, c.vocab_size));
  } else {
    AUGUR_ASSIGN_OR_RETURN(vocab, ReadSpmVocab(tokenizer, c.vocab_size));
  }
  const int64_t head_dim = c.head_dim_or_default();

  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", options.name.empty() ? Basename(model_dir) : options.name);
  w.SetU32("general.file_type", LlamaFileType(options.type));
  w.SetU32("general.quantization_version", kGgmlQuantVersion);
  w.SetU32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  w.SetU32("llama.context_length", static_cast<uint32_t>(c.max_position_embeddings));
  w.SetU32("llama.embedding_length", static_cast<uint32_t>(c.hidden_size));
  w.SetU32("llama.block_count", static_cast<uint32_t>(c.num_hidden_layers));
  w.SetU32("llama.feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  w.SetU32("llama.attention.head_count", static_cast<uint32_t>(c.num_attention_heads));
  w.SetU32("llama.attention.head_count_kv", static_cast<uint32_t>(c.num_key_value_heads));
  w.SetU32("llama.attention.key_length", static_cast<uint32_t>(head_dim));
  w.SetU32("llama.attention.value_length", static_cast<uint32_t>(head_dim));
  w.SetF32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
  w.SetF32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  w.SetU32("llama.rope.dimension_count", static_cast<uint32_t>(head_dim));
  if (bpe) {
    w.SetString("tokenizer.ggml.model", "gpt2");
    w.SetString("tokenizer.ggml.pre", bpe_vocab.pre);
    w.SetStringArray("tokenizer.ggml.tokens", bpe_vocab.tokens);
    w.SetI32Array("tokenizer.ggml.token_type", bpe_vocab.types);
    w.SetStringArray("tokenizer.ggml.merges", bpe_vocab.merges);
    SetSpecialIds(w, bpe_vocab.bos_id, bpe_vocab.eos_id, bpe_vocab.unk_id, bpe_vocab.pad_id);
    w.SetBool("tokenizer.ggml.add_bos_token", bpe_vocab.add_bos);
    w.SetBool("tokenizer.ggml.add_eos_token", false);
    w.SetBool("tokenizer.ggml.add_space_prefix", false);
    if (!bpe_vocab.chat_template.empty()) w.SetString("tokenizer.chat_template", bpe_vocab.chat_template);
  } else {
    w.SetString("tokenizer.ggml.model", "llama");
    w.SetString("tokenizer.ggml.pre", "default");
    w.SetStringArray("tokenizer.ggml.tokens", vocab.tokens);
    w.SetF32Array("tokenizer.ggml.scores", vocab.scores);
    w.SetI32Array("tokenizer.ggml.token_type", vocab.types);
    SetSpecialIds(w, vocab.bos_id, vocab.eos_id, vocab.unk_id, vocab.pad_id);
    // augur's documents start with BOS (training and `augur generate`) and never get an EOS.
    w.SetBool("tokenizer.ggml.add_bos_token", vocab.bos_id >= 0);
    w.SetBool("tokenizer.ggml.add_eos_token", false);
    w.SetBool("tokenizer.ggml.add_space_prefix", vocab.add_space_prefix);
    w.SetBool("tokenizer.ggml.remove_extra_whitespaces", vocab.remove_extra_whitespaces);
  }
  w.SetString("augur.kind", ckpt.meta.kind);
  w.SetString("augur.tokenizer_fingerprint", tokenizer.fingerprint());

  ExportSummary summary;
  summary.file_type = LlamaFileType(options.type);
  int64_t took_wanted = 0, matrices = 0;
  for (const auto& item : ckpt.model->named_parameters(/*recurse=*/true)) {
    const std::string& hf = item.key();
    const std::string name = GgufTensorName(hf);
    if (name.empty())
      return absl::InternalError(absl::StrCat("gguf export: ", model_dir, ": parameter ", hf, " has no GGUF name"));
    at::Tensor t = item.value().detach().to(torch::kFloat32).contiguous();
    if (!torch::isfinite(t).all().item<bool>())
      return absl::InvalidArgumentError(absl::StrCat("gguf export: ", model_dir, ": ", hf, " holds NaN or inf values"));
    const bool is_q = hf.find(".q_proj.") != std::string::npos, is_k = hf.find(".k_proj.") != std::string::npos;
    if (is_q || is_k) {
      const int64_t heads = is_q ? c.num_attention_heads : c.num_key_value_heads;
      at::Tensor permuted = torch::empty_like(t);
      PermuteForLlamaRope(t.data_ptr<float>(), permuted.data_ptr<float>(), heads, head_dim,
                          t.dim() == 2 ? t.size(1) : 1);
      t = permuted;
    }
    ExportedTensor info{name, hf, t.sizes().vec(), GgmlType::kF32};
    info.type = ChooseType(t, options.type, &info.fell_back);
    if (t.dim() >= 2) {
      ++matrices;
      if (info.type == options.type) ++took_wanted;
    }
    if (info.type == GgmlType::kF16) {
      const float amax = t.abs().max().item<float>();
      if (amax > 65504.0f)
        return absl::FailedPreconditionError(absl::StrCat("gguf export: ", model_dir, ": ", hf, " has |w| up to ", amax,
                                                          ", beyond float16's 65504; export with --type f32"));
    }
    const int64_t cols = t.size(-1), rows = t.numel() / cols;
    std::vector<uint8_t> bytes;
    bytes.reserve(rows * RowBytes(info.type, cols));
    const float* p = t.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) QuantizeRow(info.type, p + r * cols, cols, &bytes);
    w.AddTensor(name, info.shape, info.type, std::move(bytes));
    summary.tensors.push_back(std::move(info));
  }
  if (IsBlockType(options.type) && took_wanted == 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "gguf export: ", model_dir, ": --type ", GgmlTypeName(options.type), " needs weight rows whose length is a multiple of ",
        kQuantBlock, ", and none of this model's ", matrices, " matrices has one (hidden_size ", c.hidden_size,
        ", intermediate_size ", c.intermediate_size, "); export with --type f16 or f32"));
  summary.file_bytes = w.file_size();
  AUGUR_RETURN_IF_ERROR(w.Write(out_path));
  return summary;
}

}  // namespace augur::gguf
