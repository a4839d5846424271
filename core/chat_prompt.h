// Prompts as users write them: a JSONL object with "prompt" (plain text) or "messages" (a chat,
// rendered with the checkpoint's chat template, core/chat_template.h). Every reader of prompt
// files (eval, distill gen, generate --chat) encodes through here, so a prompt line means the
// same tokens everywhere.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/chat_template.h"
#include "core/status.h"
#include "core/tokenizer.h"

namespace augur {

// The chat template of a checkpoint and the ids it stops at.
struct ChatSetup {
  ChatTemplate tmpl;
  ChatSpecials specials;
  std::string source;                // where the template came from (for messages)
  std::vector<int32_t> end_of_turn;  // ids that end an assistant turn (the vocabulary's)
};

// The chat template for `tokenizer` (loaded from `tokenizer_file`): `name` chooses a family
// (--chat-template NAME); empty = detected from the chat_template of the tokenizer_config.json
// beside the tokenizer file. NotFound when there is none and no name was given; an unknown
// template is InvalidArgument naming the file.
absl::StatusOr<ChatSetup> LoadChatSetup(const Tokenizer& tokenizer, const std::string& tokenizer_file,
                                        const std::string& name = "");

// A chat setup when the checkpoint has a template (or `name` is given); otherwise the reason,
// shown only if a "messages" line turns up (plain-text prompt files need no template).
struct OptionalChat {
  bool available = false;
  ChatSetup setup;
  absl::Status why_not;
  const ChatSetup* get() const { return available ? &setup : nullptr; }
};
OptionalChat TryLoadChatSetup(const Tokenizer& tokenizer, const std::string& tokenizer_file,
                              const std::string& name = "");

// Token ids of one prompt object. "prompt": BOS (when the tokenizer adds one) + the text;
// "messages": the rendered conversation with the generation prompt appended (the template
// writes any BOS itself), special tokens in it matched as tokens. Without a chat template a
// "messages" object is an error naming `source` and why there is no template.
absl::StatusOr<std::vector<int64_t>> EncodePromptObject(const nlohmann::json& object, const Tokenizer& tokenizer,
                                                        const OptionalChat& chat, const std::string& source);

}  // namespace augur
