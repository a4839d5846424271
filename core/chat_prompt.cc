#include "core/chat_prompt.h"

#include <nlohmann/json.hpp>

#include <absl/strings/str_join.h>

#include "core/fs.h"

namespace augur {

absl::StatusOr<ChatSetup> LoadChatSetup(const Tokenizer& tokenizer, const std::string& tokenizer_file,
                                        const std::string& name) {
  ChatSetup out;
  if (!name.empty()) {
    AUGUR_ASSIGN_OR_RETURN(out.tmpl, ChatTemplateByName(name));
    out.source = absl::StrCat("--chat-template ", name);
  } else {
    const size_t slash = tokenizer_file.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : tokenizer_file.substr(0, slash);
    const std::string path = dir + "/tokenizer_config.json";
    // transformers >= 4.43 may keep the template in chat_template.jinja instead.
    const std::string jinja = dir + "/chat_template.jinja";
    nlohmann::json j = nlohmann::json::object();
    if (FileExists(path)) {
      AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
      j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object())
        return absl::InvalidArgumentError(absl::StrCat("chat template: ", path, ": not a JSON object"));
    }
    auto it = j.find("chat_template");
    if ((it == j.end() || it->is_null()) && FileExists(jinja)) {
      AUGUR_ASSIGN_OR_RETURN(std::string text, ReadFile(jinja));
      AUGUR_ASSIGN_OR_RETURN(out.tmpl, DetectChatTemplate(text, jinja));
      out.source = jinja;
    } else if (it == j.end() || it->is_null()) {
      return absl::NotFoundError(absl::StrCat("chat template: ", dir, ": no chat_template in tokenizer_config.json and no "
                                              "chat_template.jinja; pass --chat-template NAME (",
                                              absl::StrJoin(ChatTemplateNames(), ", "), ")"));
    } else {
      if (!it->is_string())
        return absl::InvalidArgumentError(absl::StrCat(
            "chat template: ", path, ": chat_template is not a string (named template lists are not supported; pass "
            "--chat-template NAME)"));
      AUGUR_ASSIGN_OR_RETURN(out.tmpl, DetectChatTemplate(it->get<std::string>(), path));
      out.source = path;
    }
  }
  if (tokenizer.bos_id() >= 0) out.specials.bos = tokenizer.IdToPiece(tokenizer.bos_id());
  if (tokenizer.eos_id() >= 0) out.specials.eos = tokenizer.IdToPiece(tokenizer.eos_id());
  for (const std::string& text : EndOfTurnTokens(out.tmpl)) {
    const int32_t id = tokenizer.PieceToId(text);
    if (id >= 0 && id != tokenizer.unk_id() && tokenizer.IdToPiece(id) == text) out.end_of_turn.push_back(id);
  }
  if (tokenizer.eos_id() >= 0) out.end_of_turn.push_back(tokenizer.eos_id());
  return out;
}

OptionalChat TryLoadChatSetup(const Tokenizer& tokenizer, const std::string& tokenizer_file, const std::string& name) {
  OptionalChat out;
  auto setup = LoadChatSetup(tokenizer, tokenizer_file, name);
  if (setup.ok()) {
    out.available = true;
    out.setup = *std::move(setup);
  } else {
    out.why_not = setup.status();
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> EncodePromptObject(const nlohmann::json& j, const Tokenizer& tokenizer,
                                                        const OptionalChat& chat, const std::string& source) {
  const bool has_prompt = j.is_object() && j.contains("prompt");
  const bool has_messages = j.is_object() && j.contains("messages");
  if (has_prompt == has_messages)
    return absl::InvalidArgumentError(absl::StrCat(
        "prompts: ", source, ": needs exactly one of a string field \"prompt\" or a \"messages\" list"));
  std::vector<int64_t> ids;
  if (has_prompt) {
    if (!j["prompt"].is_string())
      return absl::InvalidArgumentError(absl::StrCat("prompts: ", source, ": \"prompt\" is not a string"));
    if (tokenizer.add_bos()) ids.push_back(tokenizer.bos_id());
    for (int32_t id : tokenizer.Encode(j["prompt"].get<std::string>())) ids.push_back(id);
  } else {
    if (!chat.available)
      return absl::FailedPreconditionError(absl::StrCat("prompts: ", source,
                                                        ": a \"messages\" line needs a chat template: ", chat.why_not.message()));
    AUGUR_ASSIGN_OR_RETURN(std::vector<ChatMessage> messages, ParseMessages(j["messages"], source));
    AUGUR_ASSIGN_OR_RETURN(std::string text, RenderChat(chat.setup.tmpl, messages, /*add_generation_prompt=*/true,
                                                        chat.setup.specials));
    for (int32_t id : tokenizer.Encode(text)) ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat("prompts: ", source, ": empty prompt"));
  return ids;
}

}  // namespace augur
