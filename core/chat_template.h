// Chat templates without a Jinja interpreter: a checkpoint's `chat_template` text is matched
// against a table of known families (substrings of the Jinja source), and each family renders
// a conversation with a small C++ function written to give byte-identical output to the real
// template (tests/python/test_chat_template.py checks this against Jinja as transformers runs
// it). The same approach llama.cpp used for years (llm_chat_detect_template).
//
// Torch-free: cli/ and eval/ call it to turn `"messages"` prompt lines into text, and
// EndOfTurnTokens gives the token texts at which generation of the assistant turn stops.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace augur {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// Token texts that some templates print ({{ bos_token }}, {{ eos_token }}); take them from the
// checkpoint's tokenizer. Templates that do not use them ignore them.
struct ChatSpecials {
  std::string bos = "<s>";
  std::string eos = "</s>";
  // Templates that print today's date (Llama 3.2: strftime_now("%d %b %Y")) use this text;
  // empty = the local date now, as transformers renders it.
  std::string today;
};

// How a family treats a leading system message.
enum class SystemRole {
  kNative,            // a turn of its own (ChatML, Llama 3)
  kFoldIntoFirstUser, // prepended to the first user turn (Llama 2 <<SYS>>, Mistral v0.2)
  kUnsupported,       // the template raises (Gemma, Mixtral v0.1)
};

// A detected template: a row of the family table plus the parameters read from its text.
struct ChatTemplate {
  std::string family;          // a name from ChatTemplateNames()
  std::string default_system;  // chatml: system turn injected when the conversation has none
  bool bos_prefix = false;     // chatml/llama3/gemma: output starts with the bos token text
  // llama3: Llama 3.1+ prints "Cutting Knowledge Date: December 2023\nToday Date: <date>\n\n"
  // in a system header that is always present; Llama 3.0 has no such header.
  bool knowledge_header = false;
  std::string date_string;  // the fixed date (3.1: "26 Jul 2024"); empty = today (3.2)
};

// The families, in the order detection tries them.
std::vector<std::string> ChatTemplateNames();

// Identifies the family of a Jinja chat template. `source` names where the text came from
// (a file path, "GGUF tokenizer.chat_template") for the error message.
absl::StatusOr<ChatTemplate> DetectChatTemplate(std::string_view jinja_text,
                                                std::string_view source);

// A family by name (--chat-template NAME), with the family's usual defaults.
absl::StatusOr<ChatTemplate> ChatTemplateByName(std::string_view name);

// Renders the conversation as the family's template does; with add_generation_prompt the
// text ends where the assistant's reply begins. Errors (one line) for an empty conversation,
// an unknown role, and role orders the real template rejects.
absl::StatusOr<std::string> RenderChat(const ChatTemplate& tmpl,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, const ChatSpecials& specials);

// Texts of the tokens that end an assistant turn (stop generation at any of them that the
// vocabulary has). Families that end turns with the eos token list "</s>"; callers should
// also stop at the checkpoint's own eos.
std::vector<std::string> EndOfTurnTokens(const ChatTemplate& tmpl);

// SystemRole of the template's family.
SystemRole ChatSystemRole(const ChatTemplate& tmpl);

// Reads `[{"role": "...", "content": "..."}, ...]`; `source` names the input (e.g.
// "prompts.jsonl:12") for the error message.
absl::StatusOr<std::vector<ChatMessage>> ParseMessages(const nlohmann::json& json,
                                                       std::string_view source);

}  // namespace augur
