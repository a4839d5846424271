#include "cli/drafter_spec.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>

#include "core/checkpoint.h"
#include "core/tokenizer.h"
#include "eval/ar_drafter.h"
#include "eval/prompt_lookup.h"

namespace augur::cli {
namespace {

// The tokenizer a checkpoint was made with: augur.json's record, else its tokenizer.model.
std::string CheckpointTokenizerFingerprint(const LoadedCheckpoint& ckpt) {
  if (!ckpt.meta.tokenizer_fingerprint.empty()) return ckpt.meta.tokenizer_fingerprint;
  if (ckpt.tokenizer_model.empty()) return "";
  auto tok = Tokenizer::Load(ckpt.tokenizer_model);
  return tok.ok() ? tok->fingerprint() : "";
}

absl::StatusOr<std::unique_ptr<Drafter>> MakeAr(const std::string& arg, const DrafterContext& ctx) {
  if (arg.empty()) return absl::InvalidArgumentError("--drafter ar: needs a checkpoint directory (ar:DIR)");
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadCheckpoint(arg, ctx.device, torch::kFloat32));
  if (ckpt.meta.kind == "nat-drafter")
    return absl::InvalidArgumentError(absl::StrCat("--drafter ar:", arg, ": is a NAT drafter; use nat:", arg));
  const ModelConfig& cfg = ckpt.model->config();
  if (ctx.target_config != nullptr && cfg.vocab_size != ctx.target_config->vocab_size)
    return absl::FailedPreconditionError(absl::StrCat("--drafter ar:", arg, ": vocabulary ", cfg.vocab_size,
                                                      " differs from the target's ", ctx.target_config->vocab_size,
                                                      "; a drafter must share the target's tokenizer"));
  const std::string fp = CheckpointTokenizerFingerprint(ckpt);
  if (!fp.empty() && !ctx.target_tokenizer_fingerprint.empty() && fp != ctx.target_tokenizer_fingerprint)
    return absl::FailedPreconditionError(absl::StrCat("--drafter ar:", arg, ": made with tokenizer ", fp,
                                                      " but the target ", ctx.target_dir, " uses ",
                                                      ctx.target_tokenizer_fingerprint,
                                                      "; a drafter must share the target's tokenizer"));
  if (ctx.capacity > cfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat("--drafter ar:", arg, ": max_position_embeddings ",
                                                   cfg.max_position_embeddings, " is shorter than prompt + max_new + gamma (",
                                                   ctx.capacity, "); lower --max-new or --prompt-len"));
  return std::unique_ptr<Drafter>(new ArDrafter(ckpt.model, ctx.capacity, "ar:" + arg));
}

absl::StatusOr<std::unique_ptr<Drafter>> MakePromptLookup(const std::string& arg, const DrafterContext&) {
  int64_t max_ngram = 3, min_ngram = 1;
  if (!arg.empty()) {
    for (absl::string_view kv : absl::StrSplit(arg, ',')) {
      std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      int64_t v = 0;
      if (!absl::SimpleAtoi(p.second, &v) || v < 1)
        return absl::InvalidArgumentError(absl::StrCat("--drafter prompt-lookup:", arg, ": \"", std::string(kv),
                                                       "\" needs a positive integer value"));
      if (p.first == "n") {
        max_ngram = v;
      } else if (p.first == "min") {
        min_ngram = v;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--drafter prompt-lookup:", arg, ": unknown key \"", p.first,
                                                       "\" (keys: n = longest n-gram, min = shortest)"));
      }
    }
  }
  if (min_ngram > max_ngram)
    return absl::InvalidArgumentError(absl::StrCat("--drafter prompt-lookup:", arg, ": min ", min_ngram, " > n ", max_ngram));
  return std::unique_ptr<Drafter>(new PromptLookupDrafter(max_ngram, min_ngram));
}

}  // namespace

const std::vector<DrafterKind>& DrafterKinds() {
  static const std::vector<DrafterKind> table = {
      {"ar", "ar:DIR", "autoregressive drafter checkpoint (augur train / distill ar); gamma sequential steps", MakeAr},
      {"nat", "nat:DIR", "parallel (NAT) drafter checkpoint (augur distill nat); gamma tokens in one pass", nullptr},
      {"ngram", "ngram:FILE.h5", "n-gram retrieval over a token store (a datastore 'search engine')", nullptr},
      {"prompt-lookup", "prompt-lookup[:n=3,min=1]",
       "copy what followed the latest earlier match of the context's last n..min tokens; no model", MakePromptLookup},
  };
  return table;
}

std::string DrafterSpecHelp() {
  std::string out = "Drafter kinds (--drafter SPEC):\n";
  for (const auto& k : DrafterKinds())
    absl::StrAppend(&out, "  ", k.syntax, std::string(k.syntax.size() < 26 ? 26 - k.syntax.size() : 1, ' '), k.help,
                    k.make ? "" : " [not available in this build]", "\n");
  absl::StrAppend(&out, "  A+B                       several drafters as one token tree [not available in this build]\n");
  return out;
}

absl::StatusOr<std::unique_ptr<Drafter>> MakeDrafter(const std::string& spec, const DrafterContext& ctx) {
  // Hook for the multi-drafter tree engine: a '+'-joined set becomes one tree drafter.
  if (spec.find('+') != std::string::npos)
    return absl::UnimplementedError(absl::StrCat("--drafter ", spec,
                                                 ": drafter sets (a token tree over several drafters) are not "
                                                 "available in this build; give each drafter as its own --drafter"));
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  for (const auto& k : DrafterKinds()) {
    if (k.kind != kind) continue;
    if (k.make == nullptr)
      return absl::UnimplementedError(absl::StrCat("--drafter ", spec, ": the ", kind,
                                                   " drafter is not available in this build"));
    return k.make(arg, ctx);
  }
  std::string kinds;
  for (const auto& k : DrafterKinds()) absl::StrAppend(&kinds, kinds.empty() ? "" : ", ", k.syntax);
  return absl::InvalidArgumentError(absl::StrCat("--drafter ", spec, ": unknown kind \"", kind, "\" (kinds: ", kinds, ")"));
}

}  // namespace augur::cli
