// augur generate: load a checkpoint as a target (eval/target.h LoadTarget: the native engine on
// the CPU, LibTorch elsewhere; fp32, quantized by augur quantize, or quantized on load), encode
// the prompt, generate with the KV cache (runtime/decode_model.h Generate), stream the text to
// stdout and the speed to stderr.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/chat_prompt.h"
#include "cli/commands.h"
#include "core/device.h"
#include "core/sampling.h"
#include "core/tokenizer.h"
#include "eval/target.h"
#include "runtime/decode_model.h"

namespace augur::cli {
namespace {

// Prints the decoded text as it grows, holding back a trailing partial UTF-8 character
// (SentencePiece decodes an incomplete byte sequence as U+FFFD).
class TextStream {
 public:
  explicit TextStream(const Tokenizer& tok) : tok_(tok) {}
  void push(int64_t id) {
    ids_.push_back(static_cast<int32_t>(id));
    flush(false);
  }
  void flush(bool final) {
    auto text = tok_.Decode(ids_);
    if (!text.ok()) return;
    static const std::string kReplacement = "\xEF\xBF\xBD";
    size_t end = text->size();
    if (!final && end >= 3 && text->compare(end - 3, 3, kReplacement) == 0) end -= 3;
    if (end > printed_ && text->compare(0, printed_, *text, 0, printed_) == 0) {
      std::fwrite(text->data() + printed_, 1, end - printed_, stdout);
      std::fflush(stdout);
      printed_ = end;
    }
  }

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;
  size_t printed_ = 0;
};

}  // namespace

int RunGenerate(int argc, char** argv, int first) {
  const std::string cmd = "generate";
  Args args("generate", "augur generate: sample a continuation of a prompt from a checkpoint (KV cache).",
            "augur generate --model DIR (--prompt TEXT | --chat TEXT) [--max-new N] [--temperature T] [--top-p P] [--seed S]");
  args.flag("model", "DIR", "checkpoint directory (HF layout with its tokenizer; a quantized one runs quantized)", "",
            /*required=*/true)
      .flag("prompt", "TEXT", "text to continue")
      .flag("chat", "TEXT", "a user message: rendered with the checkpoint's chat template, the reply is printed and "
                            "generation stops at the template's end of turn")
      .flag("system", "TEXT", "with --chat: a system message before it")
      .flag("chat-template", "NAME", "with --chat: the template family (default: detected from tokenizer_config.json)")
      .flag("max-new", "N", "new tokens at most (stops earlier at EOS)", "128")
      .flag("temperature", "T", "sampling temperature (0 = greedy)", "0.8")
      .flag("top-k", "K", "keep the K most probable tokens (0 = off)", "0")
      .flag("top-p", "P", "keep the smallest set of tokens with mass >= P (1 = off)", "0.95")
      .flag("seed", "S", "sampling seed (same seed, same output)", "0")
      .flag("tokenizer", "DIR", "tokenizer directory or .model file (default: the checkpoint's)")
      .flag("device", "cpu|cuda|auto", "where to run", "cpu")
      .flag("engine", "auto|native|torch",
            "native: augur's CPU engine (fp32/int8/int4, multi-threaded); torch: LibTorch (any device); auto: native "
            "on the CPU",
            "auto")
      .flag("quant", "SCHEME", "run an fp32 checkpoint quantized on load: int8, int4-g32, int4-g64 or int4-g128")
      .flag("threads", "N", "CPU threads, native kernels and LibTorch alike (0 = LibTorch's default)", "0")
      .toggle("only-new", "print only the generated text, not the prompt")
      .toggle("ignore-eos", "do not stop at EOS")
      .toggle("print-ids", "print one JSON line {\"prompt_ids\": [...], \"ids\": [...]} (BOS included in "
                           "prompt_ids) instead of the text");
  if (auto st = args.parse(argc, argv, first); !st.ok()) return Fail(cmd, st);
  if (args.help_requested()) {
    std::printf("%s", args.help().c_str());
    return 0;
  }

  GenerateOptions gen;
  auto max_new = args.i64("max-new");
  auto temperature = args.f64("temperature");
  auto top_k = args.i64("top-k");
  auto top_p = args.f64("top-p");
  auto seed = args.i64("seed");
  auto threads = args.i64("threads");
  for (const absl::Status& st : {max_new.status(), temperature.status(), top_k.status(), top_p.status(),
                                 seed.status(), threads.status()})
    if (!st.ok()) return Fail(cmd, st);
  gen.max_new = *max_new;
  gen.sampling = {*temperature, *top_k, *top_p};
  gen.seed = static_cast<uint64_t>(*seed);
  if (auto st = gen.sampling.Validate(); !st.ok()) return Fail(cmd, st);
  if (*max_new < 0) return Fail(cmd, absl::InvalidArgumentError("--max-new must be >= 0"));
  if (*threads > 0) torch::set_num_threads(static_cast<int>(*threads));

  auto device = ParseDevice(args.str("device"));
  if (!device.ok()) return Fail(cmd, device.status());
  const std::string model_dir = args.str("model");
  const std::string tok_path = args.has("tokenizer") ? args.str("tokenizer") : FindTokenizerFile(model_dir);
  if (tok_path.empty())
    return Fail(cmd, absl::NotFoundError(absl::StrCat(model_dir, ": no tokenizer in the checkpoint; pass --tokenizer DIR")));
  auto tokenizer = Tokenizer::Load(tok_path);
  if (!tokenizer.ok()) return Fail(cmd, tokenizer.status());

  const bool chat = args.has("chat");
  std::vector<int64_t> prompt;
  gen.eos_id = args.on("ignore-eos") ? -1 : (tokenizer->eos_id() >= 0 ? tokenizer->eos_id() : -2);
  if (chat) {
    auto setup = LoadChatSetup(*tokenizer, tokenizer->source(), args.str("chat-template"));
    if (!setup.ok()) return Fail(cmd, setup.status());
    nlohmann::json messages = nlohmann::json::array();
    if (args.has("system")) messages.push_back({{"role", "system"}, {"content", args.str("system")}});
    messages.push_back({{"role", "user"}, {"content", args.str("chat")}});
    OptionalChat opt;
    opt.available = true;
    opt.setup = *setup;
    auto ids = EncodePromptObject({{"messages", messages}}, *tokenizer, opt, "--chat");
    if (!ids.ok()) return Fail(cmd, ids.status());
    prompt = *std::move(ids);
    if (!args.on("ignore-eos")) gen.stop_ids.assign(setup->end_of_turn.begin(), setup->end_of_turn.end());
  } else {
    if (args.str("prompt").empty())
      return Fail(cmd, absl::InvalidArgumentError("needs --prompt TEXT or --chat TEXT"));
    if (tokenizer->add_bos()) prompt.push_back(tokenizer->bos_id());  // documents start with BOS in training
    for (int32_t id : tokenizer->Encode(args.str("prompt"))) prompt.push_back(id);
  }

  TargetOptions topts;
  topts.dir = model_dir;
  topts.engine = args.str("engine");
  topts.quant = args.str("quant");
  topts.device = *device;
  topts.capacity = static_cast<int64_t>(prompt.size()) + std::max<int64_t>(gen.max_new, 1);
  auto target = LoadTarget(topts);
  if (!target.ok()) return Fail(cmd, target.status());
  if (!target->meta.tokenizer_fingerprint.empty() && target->meta.tokenizer_fingerprint != tokenizer->fingerprint())
    return Fail(cmd, absl::FailedPreconditionError(absl::StrCat(
                         tok_path, ": not the tokenizer ", model_dir, " was trained with (fingerprint ",
                         tokenizer->fingerprint(), " != ", target->meta.tokenizer_fingerprint, ")")));
  if (tokenizer->vocab_size() > target->config.vocab_size)
    return Fail(cmd, absl::FailedPreconditionError(absl::StrCat(tok_path, ": vocabulary ", tokenizer->vocab_size(),
                                                                " is larger than the model's ",
                                                                target->config.vocab_size)));

  const bool print_ids = args.on("print-ids");
  if (!args.on("only-new") && !print_ids && !chat) {
    std::fwrite(args.str("prompt").data(), 1, args.str("prompt").size(), stdout);
    std::fflush(stdout);
  }
  TextStream stream(*tokenizer);
  auto result = Generate(*target->model, prompt, gen, [&](int64_t id) {
    if (!print_ids) stream.push(id);
  });
  if (!result.ok()) return Fail(cmd, result.status());
  if (print_ids) {
    std::printf("%s\n", nlohmann::json({{"prompt_ids", prompt}, {"ids", result->tokens}}).dump().c_str());
  } else {
    stream.flush(true);
    std::printf("\n");
  }
  std::fflush(stdout);

  const double decode_tok_s = result->decode_s > 0 ? result->decode_forwards / result->decode_s : 0;
  const double total_s = result->prefill_s + result->decode_s;
  std::fprintf(stderr,
               "augur generate: %zu new tokens in %.2f s (%.1f tokens/s); prompt %zu tokens prefilled in %.1f ms; "
               "decode %.1f tokens/s; %s; %s on %s; %s\n",
               result->tokens.size(), total_s, total_s > 0 ? result->tokens.size() / total_s : 0.0, prompt.size(),
               result->prefill_s * 1e3, decode_tok_s, gen.sampling.ToString().c_str(), target->precision.c_str(),
               target->engine.c_str(),
               result->hit_eos ? (chat ? "stopped at the end of turn" : "stopped at EOS") : "reached --max-new");
  return 0;
}

}  // namespace augur::cli
