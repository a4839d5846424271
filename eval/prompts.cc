#include "eval/prompts.h"

#include <absl/strings/match.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/chat_prompt.h"
#include "core/fs.h"
#include "core/tokenizer.h"
#include "datasets/token_store.h"

namespace augur {
namespace {

absl::StatusOr<std::vector<EvalPrompt>> FromJsonl(const std::string& path, const Tokenizer* tokenizer,
                                                  const PromptOptions& opts) {
  if (tokenizer == nullptr)
    return absl::FailedPreconditionError(
        absl::StrCat("prompts: ", path, ": JSONL prompts are text and need the target's tokenizer (none found)"));
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("prompts: ", path, ": cannot open"));
  // The chat template is only needed (and its absence only an error) for "messages" lines.
  const OptionalChat chat = TryLoadChatSetup(*tokenizer, tokenizer->source(), opts.chat_template);
  std::vector<EvalPrompt> out;
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat("prompts: ", path, ":", lineno, ": not JSON (", e.what(), ")"));
    }
    EvalPrompt p;
    p.source = absl::StrCat(path, ":", lineno);
    AUGUR_ASSIGN_OR_RETURN(p.ids, EncodePromptObject(j, *tokenizer, chat, p.source));
    if (j.contains("kind") && j["kind"].is_string()) p.kind = j["kind"].get<std::string>();
    out.push_back(std::move(p));
    if (opts.num_prompts > 0 && static_cast<int64_t>(out.size()) >= opts.num_prompts) break;
  }
  if (out.empty()) return absl::InvalidArgumentError(absl::StrCat("prompts: ", path, ": no prompts"));
  return out;
}

absl::StatusOr<std::vector<EvalPrompt>> FromStore(const std::string& path, const Tokenizer* tokenizer,
                                                  const PromptOptions& opts) {
  if (opts.prompt_len < 1)
    return absl::InvalidArgumentError(absl::StrCat("prompts: --prompt-len ", opts.prompt_len, ": must be >= 1"));
  AUGUR_ASSIGN_OR_RETURN(auto store, TokenStore::Open(path));
  if (tokenizer != nullptr) AUGUR_RETURN_IF_ERROR(store->Check(*tokenizer));
  AUGUR_ASSIGN_OR_RETURN(Split split, ParseSplit(opts.split));
  // A prompt is the head of a document that continues past it, so held-out text follows.
  std::vector<int64_t> eligible;
  for (int64_t d : store->split_docs(split))
    if (store->doc_length(d) > opts.prompt_len) eligible.push_back(d);
  if (eligible.empty())
    return absl::InvalidArgumentError(absl::StrCat("prompts: ", path, ": no ", opts.split,
                                                   " document is longer than --prompt-len ", opts.prompt_len));
  const int64_t n = opts.num_prompts > 0 ? std::min<int64_t>(opts.num_prompts, eligible.size())
                                         : static_cast<int64_t>(eligible.size());
  std::vector<EvalPrompt> out;
  for (int64_t i = 0; i < n; ++i) {
    // Evenly spread over the split: neighbouring documents are often from one package.
    const int64_t doc = eligible[static_cast<size_t>(i * static_cast<int64_t>(eligible.size()) / n)];
    EvalPrompt p;
    p.ids.resize(static_cast<size_t>(opts.prompt_len));
    AUGUR_RETURN_IF_ERROR(store->ReadTokens(store->doc_offsets()[doc], opts.prompt_len, p.ids.data()));
    auto name = store->DocumentName(doc);
    p.source = absl::StrCat(path, ":", opts.split, " doc ", doc, name.ok() ? " (" + *name + ")" : "");
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<EvalPrompt>> LoadPrompts(const std::string& path, const Tokenizer* tokenizer,
                                                    const PromptOptions& opts) {
  if (!FileExists(path)) return absl::NotFoundError(absl::StrCat("prompts: ", path, ": no such file"));
  if (absl::EndsWith(path, ".h5") || absl::EndsWith(path, ".hdf5")) return FromStore(path, tokenizer, opts);
  return FromJsonl(path, tokenizer, opts);
}

}  // namespace augur
