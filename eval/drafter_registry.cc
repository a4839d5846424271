#include "eval/drafter_registry.h"

#include <absl/strings/match.h>
#include <absl/strings/numbers.h>
#include <absl/strings/str_split.h>

#include <cstdio>

#include "core/checkpoint.h"
#include "core/tokenizer.h"
#include "eval/ar_drafter.h"
#include "core/eagle_head.h"
#include "core/safetensors.h"
#include "eval/draft_vocab.h"
#include "eval/eagle_drafter.h"
#include "eval/harness.h"
#include "eval/nat_drafter.h"
#include "eval/ngram_index.h"
#include "eval/prompt_lookup.h"
#include "runtime/eagle_decoder.h"
#include "runtime/native_eagle.h"
#include "runtime/native_llama.h"
#include "runtime/qmodel.h"
#include "runtime/scheme.h"

namespace augur {
namespace {

// The tokenizer a checkpoint was made with: augur.json's record, else its tokenizer.model.
std::string CheckpointTokenizerFingerprint(const LoadedCheckpoint& ckpt) {
  if (!ckpt.meta.tokenizer_fingerprint.empty()) return ckpt.meta.tokenizer_fingerprint;
  if (ckpt.tokenizer_model.empty()) return "";
  auto tok = Tokenizer::Load(ckpt.tokenizer_model);
  return tok.ok() ? tok->fingerprint() : "";
}

// Loads a model drafter's checkpoint onto ctx.device (fp32, or quantized when augur.json
// names a scheme: quantize's kernels then run its linears) and checks what every model
// drafter must share with the target: vocabulary, tokenizer, and room for the context.
absl::StatusOr<LoadedCheckpoint> LoadDrafterCheckpoint(const std::string& kind, const std::string& arg,
                                                       const DrafterContext& ctx) {
  const std::string spec = absl::StrCat("--drafter ", kind, ":", arg);
  if (arg.empty()) return absl::InvalidArgumentError(absl::StrCat("--drafter ", kind, ": needs a checkpoint directory (",
                                                                  kind, ":DIR)"));
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadAnyCheckpoint(arg, ctx.device));
  const ModelConfig& cfg = ckpt.model->config();
  if (ctx.target_config != nullptr && cfg.vocab_size != ctx.target_config->vocab_size)
    return absl::FailedPreconditionError(absl::StrCat(spec, ": vocabulary ", cfg.vocab_size,
                                                      " differs from the target's ", ctx.target_config->vocab_size,
                                                      "; a drafter must share the target's tokenizer"));
  const std::string fp = CheckpointTokenizerFingerprint(ckpt);
  if (!fp.empty() && !ctx.target_tokenizer_fingerprint.empty() && fp != ctx.target_tokenizer_fingerprint) {
    // Another tokenizer file: still fine when it tokenizes alike (llama.cpp's draft check).
    auto target_tok = Tokenizer::Load(ctx.target_dir);
    auto drafter_tok = ckpt.tokenizer_model.empty() ? absl::StatusOr<Tokenizer>(absl::NotFoundError("none"))
                                                    : Tokenizer::Load(ckpt.tokenizer_model);
    // The llama.cpp check needs the drafter's own tokenizer: a file that is not the one its
    // augur.json records says nothing about how the drafter was trained.
    const bool file_is_record = drafter_tok.ok() && (ckpt.meta.tokenizer_fingerprint.empty() ||
                                                     ckpt.meta.tokenizer_fingerprint == drafter_tok->fingerprint());
    if (!target_tok.ok() || !file_is_record)
      return absl::FailedPreconditionError(absl::StrCat(spec, ": made with tokenizer ", fp, " but the target ",
                                                        ctx.target_dir, " uses ", ctx.target_tokenizer_fingerprint,
                                                        "; a drafter must share the target's tokenizer"));
    AUGUR_RETURN_IF_ERROR(CheckDraftTokenizer(*target_tok, *drafter_tok, ctx.target_dir, arg));
  }
  if (ctx.capacity > cfg.max_position_embeddings)
    return absl::InvalidArgumentError(absl::StrCat(spec, ": max_position_embeddings ", cfg.max_position_embeddings,
                                                   " is shorter than prompt + max_new + gamma (", ctx.capacity,
                                                   "); lower --max-new or --prompt-len"));
  return ckpt;
}

// A short label for reports and plots: "ar:NAME", or "ar:NAME (int4-g32)" for a quantized
// checkpoint, NAME being the checkpoint directory's own name (the full spec is in the report's
// config).
std::string DrafterName(const std::string& kind, const std::string& arg, const AugurMeta& meta) {
  const size_t comma = arg.find(',');
  std::string dir = arg.substr(0, comma);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.rfind('/');
  std::string name = absl::StrCat(kind, ":", slash == std::string::npos ? dir : dir.substr(slash + 1));
  // Options other than vocab (which WithVocab shows) stay in the label: engine=torch and
  // engine=native of one checkpoint are two rows.
  if (comma != std::string::npos)
    for (absl::string_view opt : absl::StrSplit(arg.substr(comma + 1), ','))
      if (!absl::StartsWith(opt, "vocab=")) absl::StrAppend(&name, ",", opt);
  return meta.quantization.empty() ? name : absl::StrCat(name, " (", meta.quantization, ")");
}

// A model drafter's argument: DIR[,engine=torch|native][,vocab=N|full].
struct ModelDrafterArg {
  std::string dir;
  std::string engine;   // "" = default: native on the CPU, torch elsewhere
  int64_t vocab = -1;   // -1: the checkpoint's draft_vocab.json size (full when absent); 0: full
};

absl::StatusOr<ModelDrafterArg> ParseModelDrafterArg(const std::string& kind, const std::string& arg) {
  std::vector<std::string> parts = absl::StrSplit(arg, ',');
  ModelDrafterArg out;
  out.dir = parts[0];
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    if (kv.first == "engine") {
      if (kv.second != "torch" && kv.second != "native")
        return absl::InvalidArgumentError(absl::StrCat("--drafter ", kind, ":", arg, ": engine \"", kv.second,
                                                       "\" is not torch or native"));
      out.engine = kv.second;
    } else if (kv.first == "vocab") {
      if (kv.second == "full") {
        out.vocab = 0;
      } else if (!absl::SimpleAtoi(kv.second, &out.vocab) || out.vocab < 1) {
        return absl::InvalidArgumentError(absl::StrCat("--drafter ", kind, ":", arg, ": vocab \"", kv.second,
                                                       "\" is not a positive integer or full"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--drafter ", kind, ":", arg, ": unknown key \"", kv.first,
                                                     "\" (keys: engine=torch|native, vocab=N|full)"));
    }
  }
  return out;
}

// The draft vocabulary a model drafter runs with: vocab=N from the checkpoint's ranking, the
// ranking's own size by default, the full vocabulary when the checkpoint has none.
absl::StatusOr<std::vector<int64_t>> ChooseDraftVocab(const std::string& spec, const ModelDrafterArg& a,
                                                      int64_t vocab) {
  AUGUR_ASSIGN_OR_RETURN(std::optional<DraftVocab> dv, ReadDraftVocab(a.dir, vocab));
  if (a.vocab == 0 || (a.vocab < 0 && !dv)) return std::vector<int64_t>();
  if (!dv)
    return absl::FailedPreconditionError(absl::StrCat(spec, ": vocab=", a.vocab, " needs ", a.dir, "/",
                                                      kDraftVocabFile, " (augur distill ar|nat --draft-vocab N)"));
  const int64_t n = a.vocab < 0 ? dv->size : a.vocab;
  if (n > vocab)
    return absl::InvalidArgumentError(absl::StrCat(spec, ": vocab=", n, " exceeds the vocabulary ", vocab));
  if (n == vocab) return std::vector<int64_t>();
  return dv->Top(n);
}

// "ar:NAME" plus " v4096" when the draft vocabulary is reduced.
std::string WithVocab(std::string name, size_t n) {
  return n == 0 ? name : absl::StrCat(name, " v", n);
}

// The engine that runs a model drafter: NativeLlama (runtime/native_llama.h) for a CPU model
// unless engine=torch; LibTorch when asked, on other devices, or when the native runtime
// refuses the model (a one-line note says why).
std::unique_ptr<DecodeModel> MakeDecoder(const std::string& spec, const std::string& engine, LlamaModel model,
                                         int64_t capacity) {
  const bool want_native = engine == "native" || (engine.empty() && model->device().is_cpu());
  if (want_native) {
    auto native = NativeLlama::Create(model, capacity);
    if (native.ok()) return std::move(native).value();
    std::fprintf(stderr, "%s: running on LibTorch: %s\n", spec.c_str(), std::string(native.status().message()).c_str());
  }
  return std::make_unique<TorchDecodeModel>(model, capacity);
}

absl::StatusOr<std::unique_ptr<Drafter>> MakeAr(const std::string& arg, const DrafterContext& ctx) {
  AUGUR_ASSIGN_OR_RETURN(ModelDrafterArg a, ParseModelDrafterArg("ar", arg));
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadDrafterCheckpoint("ar", a.dir, ctx));
  if (ckpt.meta.kind == kKindNatDrafter)
    return absl::InvalidArgumentError(absl::StrCat("--drafter ar:", a.dir, ": is a NAT drafter; use nat:", a.dir));
  AUGUR_ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                         ChooseDraftVocab("--drafter ar:" + arg, a, ckpt.model->config().vocab_size));
  auto d = std::make_unique<ArDrafter>(MakeDecoder("--drafter ar:" + arg, a.engine, ckpt.model, ctx.capacity),
                                       WithVocab(DrafterName("ar", arg, ckpt.meta), ids.size()));
  if (!ids.empty()) AUGUR_RETURN_IF_ERROR(d->SetDraftVocab(ids));
  return std::unique_ptr<Drafter>(std::move(d));
}

absl::StatusOr<std::unique_ptr<Drafter>> MakeNat(const std::string& arg, const DrafterContext& ctx) {
  AUGUR_ASSIGN_OR_RETURN(ModelDrafterArg a, ParseModelDrafterArg("nat", arg));
  AUGUR_ASSIGN_OR_RETURN(LoadedCheckpoint ckpt, LoadDrafterCheckpoint("nat", a.dir, ctx));
  AUGUR_RETURN_IF_ERROR(CheckNatMeta(ckpt.meta, ckpt.model->config(), a.dir));
  const int64_t capacity = NatDrafter::CacheCapacity(ctx.capacity, ckpt.meta.gamma);
  AUGUR_ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                         ChooseDraftVocab("--drafter nat:" + arg, a, ckpt.model->config().vocab_size));
  auto d = std::make_unique<NatDrafter>(MakeDecoder("--drafter nat:" + arg, a.engine, ckpt.model, capacity),
                                        ckpt.meta.gamma, ckpt.meta.mask_token_id,
                                        WithVocab(DrafterName("nat", arg, ckpt.meta), ids.size()));
  if (!ids.empty()) AUGUR_RETURN_IF_ERROR(d->SetDraftVocab(ids));
  return std::unique_ptr<Drafter>(std::move(d));
}

// eagle:DIR[,engine=torch|native][,quant=SCHEME][,tree][,topk=K][,nodes=N]
absl::StatusOr<std::unique_ptr<Drafter>> MakeEagle(const std::string& arg, const DrafterContext& ctx) {
  const std::string spec = "--drafter eagle:" + arg;
  std::vector<std::string> parts = absl::StrSplit(arg, ',');
  if (parts[0].empty()) return absl::InvalidArgumentError(spec + ": needs a checkpoint directory (eagle:DIR)");
  std::string engine, quant;
  bool tree = false;
  EagleDrafter::TreeOptions topts;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    int64_t v = 0;
    if (kv.first == "tree" && kv.second.empty()) {
      tree = true;
    } else if (kv.first == "engine" && (kv.second == "torch" || kv.second == "native")) {
      engine = kv.second;
    } else if (kv.first == "quant" && ParseScheme(kv.second).ok()) {
      quant = kv.second;
    } else if ((kv.first == "topk" || kv.first == "nodes") && absl::SimpleAtoi(kv.second, &v) && v >= 1) {
      (kv.first == "topk" ? topts.topk : topts.nodes) = v;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(spec, ": \"", parts[i],
                                                     "\" is not one of engine=torch|native, quant=int8|int4-gG, tree, topk=K, "
                                                     "nodes=N"));
    }
  }
  const std::string& dir = parts[0];
  AUGUR_ASSIGN_OR_RETURN(LoadedEagle ckpt, LoadEagleHead(dir, ctx.device));
  const EagleConfig& ecfg = ckpt.head->config();
  if (ctx.target_config != nullptr) AUGUR_RETURN_IF_ERROR(ecfg.CheckTarget(*ctx.target_config, spec));
  if (!ckpt.meta.tokenizer_fingerprint.empty() && !ctx.target_tokenizer_fingerprint.empty() &&
      ckpt.meta.tokenizer_fingerprint != ctx.target_tokenizer_fingerprint)
    return absl::FailedPreconditionError(absl::StrCat(spec, ": made with tokenizer ", ckpt.meta.tokenizer_fingerprint,
                                                      " but the target uses ", ctx.target_tokenizer_fingerprint));
  // The target's embedding table: read from its checkpoint, not stored in the drafter's.
  if (!ckpt.head->embedding().defined()) {
    if (ctx.target_dir.empty()) return absl::InvalidArgumentError(spec + ": needs the target's directory for its embeddings");
    AUGUR_ASSIGN_OR_RETURN(SafetensorsCheckpoint st, SafetensorsCheckpoint::Open(ctx.target_dir));
    auto e = st.Read("model.embed_tokens.weight");
    if (!e.ok() || !at::isFloatingType(e->scalar_type()))
      return absl::FailedPreconditionError(absl::StrCat(spec, ": the target ", ctx.target_dir,
                                                        " has no float model.embed_tokens.weight to share"));
    ckpt.head->set_embedding(e->to(torch::kFloat32).to(ctx.device));
  }
  // Room for the verified context plus a tree's expanded nodes.
  const int64_t capacity = ctx.capacity + topts.topk * 16 + 1;
  // "eagle:drafter-eagle/best" rather than "eagle:best" for a run's best checkpoint.
  std::string label = dir;
  while (label.size() > 1 && label.back() == '/') label.pop_back();
  const size_t slash = label.rfind('/');
  if (slash != std::string::npos && label.substr(slash + 1) == "best") {
    const size_t up = label.rfind('/', slash - 1);
    label = label.substr(up == std::string::npos ? 0 : up + 1);
  } else if (slash != std::string::npos) {
    label = label.substr(slash + 1);
  }
  std::string name = "eagle:" + label;
  if (tree) absl::StrAppend(&name, " tree");
  std::unique_ptr<EagleDecoder> decoder;
  // quant=SCHEME: the native engine packs the fp32 weights by round-to-nearest at load.
  if (quant.empty()) quant = ckpt.meta.quantization;
  if (!quant.empty()) absl::StrAppend(&name, " (", quant, ")");
  const bool want_native = engine == "native" || (engine.empty() && ctx.device.is_cpu());
  if (want_native) {
    auto native = NativeEagle::Create(*ckpt.head, quant, capacity);
    if (native.ok()) decoder = std::move(native).value();
    else if (engine == "native") return native.status();
    else std::fprintf(stderr, "%s: running on LibTorch: %s\n", spec.c_str(), std::string(native.status().message()).c_str());
  }
  if (!decoder) {
    if (!quant.empty())
      return absl::InvalidArgumentError(absl::StrCat(spec, ": a ", quant,
                                                     " drafter runs on the native engine only (engine=native, CPU)"));
    decoder = std::make_unique<TorchEagleDecoder>(ckpt.head, capacity);
  }
  if (decoder->engine() == "torch") absl::StrAppend(&name, ",engine=torch");
  std::unique_ptr<Drafter> d = std::make_unique<EagleDrafter>(std::move(decoder), name, topts);
  if (!tree) return d;
  std::vector<std::unique_ptr<Drafter>> one;
  one.push_back(std::move(d));
  return std::unique_ptr<Drafter>(new DrafterSet(std::move(one)));
}

// ngram:FILE.h5[,n=16,min=2,branch=4,nodes=16]
absl::StatusOr<std::unique_ptr<Drafter>> MakeNgram(const std::string& arg, const DrafterContext& ctx) {
  std::vector<std::string> parts = absl::StrSplit(arg, ',');
  if (parts.empty() || parts[0].empty())
    return absl::InvalidArgumentError("--drafter ngram: needs a datastore file (ngram:FILE.h5, see augur data datastore)");
  NgramDrafter::Options o;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    int64_t v = 0;
    if (!absl::SimpleAtoi(kv.second, &v) || v < 1)
      return absl::InvalidArgumentError(absl::StrCat("--drafter ngram:", arg, ": \"", parts[i],
                                                     "\" needs a positive integer value"));
    if (kv.first == "n") o.max_ngram = v;
    else if (kv.first == "min") o.min_ngram = v;
    else if (kv.first == "branch") o.branch = v;
    else if (kv.first == "nodes") o.max_nodes = v;
    else
      return absl::InvalidArgumentError(absl::StrCat("--drafter ngram:", arg, ": unknown key \"", kv.first,
                                                     "\" (keys: n, min, branch, nodes)"));
  }
  if (o.min_ngram > o.max_ngram)
    return absl::InvalidArgumentError(absl::StrCat("--drafter ngram:", arg, ": min ", o.min_ngram, " > n ", o.max_ngram));
  AUGUR_ASSIGN_OR_RETURN(std::shared_ptr<const NgramIndex> index, NgramIndex::Open(parts[0]));
  if (ctx.target_config != nullptr && index->vocab_size() > 0 && index->vocab_size() != ctx.target_config->vocab_size)
    return absl::FailedPreconditionError(absl::StrCat("--drafter ngram:", parts[0], ": datastore vocabulary ",
                                                      index->vocab_size(), " differs from the target's ",
                                                      ctx.target_config->vocab_size));
  return std::unique_ptr<Drafter>(new NgramDrafter(std::move(index), o));
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
      {"ar", "ar:DIR[,engine=E][,vocab=N]", "autoregressive drafter checkpoint (augur train / distill ar; fp32 or quantized by augur quantize / --qat); gamma sequential steps. engine=native (default on the CPU: augur's own runtime) or torch (LibTorch); vocab=N: the head scores only the N most frequent teacher tokens (draft_vocab.json from distill --draft-vocab; its size by default, vocab=full for all)", MakeAr},
      {"nat", "nat:DIR[,engine=E][,vocab=N]", "parallel (NAT) drafter checkpoint (augur distill nat; fp32 or quantized); gamma tokens in one pass; engine and vocab as for ar", MakeNat},
      {"eagle", "eagle:DIR[,tree][,topk=K,nodes=N][,quant=Q][,engine=E]",
       "EAGLE-3 feature drafter (augur distill eagle; fp32 or quantized): one layer over the target's hidden states, "
       "gamma sequential steps on its own outputs; tree: EAGLE-2's dynamic tree instead (expand the topk best nodes "
       "per depth into topk children each, gamma deep, keep the best `nodes`; default topk=4, nodes=16), verified in "
       "one target forward. quant=int8|int4-g32|int4-g64|int4-g128: weight-only quantized by RTN at load (native "
       "engine). engine=native (default on the CPU) or torch",
       MakeEagle},
      {"ngram", "ngram:FILE.h5[,n=16,min=2,branch=4,nodes=16]",
       "n-gram retrieval over a datastore (augur data datastore): the most frequent continuation of the longest "
       "matching suffix (n..min tokens); in a drafter set, the top `branch` continuations per node as a tree",
       MakeNgram},
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
  absl::StrAppend(&out, "  A+B[+C...]                several drafters at once: their proposals merge into one token tree that the "
                       "target verifies in one forward (longest accepted path when greedy, multi-draft rejection "
                       "sampling otherwise), e.g. ar:DIR+prompt-lookup+ngram:DS.h5\n");
  return out;
}

bool DrafterSpecIsTree(const std::string& spec) {
  if (spec.find('+') != std::string::npos) return true;
  if (!absl::StartsWith(spec, "eagle:")) return false;
  for (absl::string_view opt : absl::StrSplit(spec, ','))
    if (opt == "tree") return true;
  return false;
}

absl::StatusOr<std::unique_ptr<Drafter>> MakeDrafter(const std::string& spec, const DrafterContext& ctx) {
  // A '+'-joined set becomes one DrafterSet, run by the token-tree engine.
  if (spec.find('+') != std::string::npos) {
    std::vector<std::unique_ptr<Drafter>> members;
    for (absl::string_view part : absl::StrSplit(spec, '+')) {
      if (part.empty()) return absl::InvalidArgumentError(absl::StrCat("--drafter ", spec, ": empty drafter in the set"));
      if (std::string(part).find('+') != std::string::npos) continue;
      AUGUR_ASSIGN_OR_RETURN(std::unique_ptr<Drafter> d, MakeDrafter(std::string(part), ctx));
      members.push_back(std::move(d));
    }
    return std::unique_ptr<Drafter>(new DrafterSet(std::move(members)));
  }
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

}  // namespace augur
