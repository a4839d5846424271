// Table-driven chat templates. Each family's Render function is the real Jinja template
// rewritten by hand for the messages augur supports (system/user/assistant text, no tools);
// the comments quote what each line of output corresponds to in the template.
#include "core/chat_template.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <optional>

namespace augur {
namespace {

// Debian's Abseil has its own absl::string_view, which std::string_view does not convert to.
std::string S(std::string_view v) { return std::string(v); }

// ---------------------------------------------------------------------------------------
// Python's str.strip() (what Jinja's `trim` filter and `.strip()` call) on UTF-8 text: the
// code points for which str.isspace() is true.
bool IsPyWhitespace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the code point at s[i]; sets `len` to its byte length (1 for an invalid byte,
// which then never counts as whitespace).
uint32_t DecodeAt(std::string_view s, size_t i, size_t* len) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return 0xFFFFFFFF;
  }
  uint32_t c = n == 1 ? b : (b & (0x7F >> n));
  for (size_t k = 1; k < n; ++k) {
    const auto cb = static_cast<unsigned char>(s[i + k]);
    if ((cb >> 6) != 0x2) {
      *len = 1;
      return 0xFFFFFFFF;
    }
    c = (c << 6) | (cb & 0x3F);
  }
  *len = n;
  return c;
}

std::string PyStrip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t len;
    if (!IsPyWhitespace(DecodeAt(s, begin, &len))) break;
    begin += len;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;  // back up to the lead byte of the last code point
    while (start > begin && (static_cast<unsigned char>(s[start]) >> 6) == 0x2 && end - start < 4)
      --start;
    size_t len;
    const uint32_t c = DecodeAt(s, start, &len);
    if (start + len != end || !IsPyWhitespace(c)) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

// ---------------------------------------------------------------------------------------
// Reading parameters out of the Jinja text.

bool Has(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

// The body of a string literal starting at text[i] (just after the opening quote), with
// Jinja's escapes resolved; nullopt if the literal ends (an unescaped quote) before `stop`.
std::optional<std::string> LiteralUntil(std::string_view text, size_t i, std::string_view stop) {
  std::string out;
  while (i < text.size()) {
    if (text.substr(i, stop.size()) == stop) return out;
    const char c = text[i];
    if (c == '\'' || c == '"' || c == '{' || c == '}') return std::nullopt;
    if (c == '\\' && i + 1 < text.size()) {
      const char e = text[i + 1];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      i += 2;
      continue;
    }
    out += c;
    ++i;
  }
  return std::nullopt;
}

// ChatML templates that inject a system turn when the conversation has none spell it as one
// literal, '<|im_start|>system\n<default><|im_end|>\n' (SmolLM2, Qwen2, Qwen2.5); other
// occurrences of "<|im_start|>system" are followed by an expression and are skipped.
std::string ChatmlDefaultSystem(std::string_view text) {
  const std::string_view head = "<|im_start|>system";
  for (size_t at = text.find(head); at != std::string_view::npos; at = text.find(head, at + 1)) {
    size_t i = at + head.size();
    if (text.substr(i, 2) == "\\n") {
      i += 2;
    } else if (text.substr(i, 1) == "\n") {
      i += 1;
    } else {
      continue;
    }
    if (auto body = LiteralUntil(text, i, "<|im_end|>"); body && !body->empty()) return *body;
  }
  return "";
}

// Llama 3.1 fixes the date with {%- set date_string = "26 Jul 2024" %}; Llama 3.2 prefers
// strftime_now (today) when the renderer defines it, as transformers does.
std::string Llama3Date(std::string_view text) {
  if (Has(text, "strftime_now")) return "";
  const std::string_view key = "set date_string = \"";
  const size_t at = text.find(key);
  if (at == std::string_view::npos) return "26 Jul 2024";
  const size_t end = text.find('"', at + key.size());
  if (end == std::string_view::npos) return "26 Jul 2024";
  return std::string(text.substr(at + key.size(), end - at - key.size()));
}

bool StartsWithBos(std::string_view text) {
  const size_t i = text.find_first_not_of(" \t\n");
  if (i == std::string_view::npos) return false;
  for (std::string_view form : {"{{ bos_token }}", "{{bos_token}}", "{{- bos_token }}",
                                "{{- bos_token -}}"}) {
    if (text.substr(i, form.size()) == form) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Conversation checks shared by the families.

std::string Prefix(const ChatTemplate& t) { return "chat template " + t.family + ": "; }

// Roles are known and, where `system_first_only`, system appears only as message 1.
absl::Status CheckRoles(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                        bool system_first_only) {
  if (messages.empty()) {
    return absl::InvalidArgumentError(
        Prefix(t) + "empty conversation; give at least one user message");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(absl::StrCat(
          Prefix(t), "message ", i + 1, " has role '", role,
          "'; expected system, user or assistant"));
    }
    if (system_first_only && role == "system" && i > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          Prefix(t), "message ", i + 1, " is a system message; this template takes one, first"));
    }
  }
  return absl::OkStatus();
}

// After the optional leading system message, roles go user, assistant, user, ... (the
// templates that raise_exception('Conversation roles must alternate ...')).
absl::Status CheckAlternation(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                              size_t first) {
  if (first >= messages.size()) {
    return absl::InvalidArgumentError(
        Prefix(t) + "no user message after the system message");
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const char* want = (i - first) % 2 == 0 ? "user" : "assistant";
    if (messages[i].role != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          Prefix(t), "message ", i + 1, " has role '", messages[i].role, "' where '", want,
          "' was expected; after the optional system message roles must alternate "
          "user/assistant"));
    }
  }
  return absl::OkStatus();
}

bool HasLeadingSystem(const std::vector<ChatMessage>& m) {
  return !m.empty() && m[0].role == "system";
}

std::string Today(const ChatSpecials& specials) {
  if (!specials.today.empty()) return specials.today;
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%d %b %Y", &local);
  return buf;
}

// ---------------------------------------------------------------------------------------
// Renderers.

using RenderFn = absl::StatusOr<std::string> (*)(const ChatTemplate&,
                                                 const std::vector<ChatMessage>&, bool,
                                                 const ChatSpecials&);

// <|im_start|>ROLE\nCONTENT<|im_end|>\n per message, content untrimmed; the default system
// turn goes first when messages[0] is not a system message.
absl::StatusOr<std::string> RenderChatml(const ChatTemplate& t, const std::vector<ChatMessage>& m,
                                         bool gen, const ChatSpecials& sp) {
  AUGUR_RETURN_IF_ERROR(CheckRoles(t, m, /*system_first_only=*/false));
  std::string out = t.bos_prefix ? sp.bos : "";
  if (!t.default_system.empty() && m[0].role != "system") {
    out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
  }
  for (const ChatMessage& msg : m) {
    out += "<|im_start|>" + msg.role + "\n" + msg.content + "<|im_end|>\n";
  }
  if (gen) out += "<|im_start|>assistant\n";
  return out;
}

// Llama 3.1/3.2: bos, then a system header that is always present (knowledge date, today's
// date, the trimmed system message), then <|start_header_id|>ROLE<|end_header_id|>\n\n
// CONTENT|trim<|eot_id|> per message. Llama 3.0: no system header; a system message is an
// ordinary turn.
absl::StatusOr<std::string> RenderLlama3(const ChatTemplate& t, const std::vector<ChatMessage>& m,
                                         bool gen, const ChatSpecials& sp) {
  AUGUR_RETURN_IF_ERROR(CheckRoles(t, m, /*system_first_only=*/false));
  std::string out = t.bos_prefix ? sp.bos : "";
  size_t first = 0;
  if (t.knowledge_header) {
    std::string system;
    if (HasLeadingSystem(m)) {
      system = PyStrip(m[0].content);
      first = 1;
    }
    const std::string date = t.date_string.empty() ? Today(sp) : t.date_string;
    out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
           "Today Date: " + date + "\n\n" + system + "<|eot_id|>";
  }
  for (size_t i = first; i < m.size(); ++i) {
    out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" + PyStrip(m[i].content) +
           "<|eot_id|>";
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// Llama-2-chat: BOS[INST] CONTENT.strip() [/INST] per user turn, " ANSWER.strip() EOS" per
// assistant turn; the system message becomes "<<SYS>>\n...\n<</SYS>>\n\n" in front of the
// first user turn (and is stripped together with it). The template has no generation-prompt
// switch: the prompt always ends with " [/INST]".
absl::StatusOr<std::string> RenderLlama2(const ChatTemplate& t, const std::vector<ChatMessage>& m,
                                         bool /*gen*/, const ChatSpecials& sp) {
  AUGUR_RETURN_IF_ERROR(CheckRoles(t, m, /*system_first_only=*/true));
  const size_t first = HasLeadingSystem(m) ? 1 : 0;
  AUGUR_RETURN_IF_ERROR(CheckAlternation(t, m, first));
  std::string out;
  for (size_t i = first; i < m.size(); ++i) {
    std::string content = m[i].content;
    if (i == first && first == 1) {
      content = "<<SYS>>\n" + m[0].content + "\n<</SYS>>\n\n" + content;
    }
    if (m[i].role == "user") {
      out += sp.bos + "[INST] " + PyStrip(content) + " [/INST]";
    } else {
      out += " " + PyStrip(content) + " " + sp.eos;
    }
  }
  return out;
}

// Mistral-7B-Instruct-v0.2 ("v1" with a system prompt): BOS, then " [INST] CONTENT [/INST]"
// per user turn with the system message + "\n\n" in front of the first, " ANSWER" + EOS per
// assistant turn. No stripping, no generation-prompt switch.
absl::StatusOr<std::string> RenderMistral(const ChatTemplate& t, const std::vector<ChatMessage>& m,
                                          bool /*gen*/, const ChatSpecials& sp) {
  AUGUR_RETURN_IF_ERROR(CheckRoles(t, m, /*system_first_only=*/true));
  const size_t first = HasLeadingSystem(m) ? 1 : 0;
  AUGUR_RETURN_IF_ERROR(CheckAlternation(t, m, first));
  std::string out = sp.bos;
  for (size_t i = first; i < m.size(); ++i) {
    if (m[i].role == "user") {
      const std::string system = (i == first && first == 1) ? m[0].content + "\n\n" : "";
      out += " [INST] " + system + m[i].content + " [/INST]";
    } else {
      out += " " + m[i].content + sp.eos;
    }
  }
  return out;
}

// Mixtral-8x7B-Instruct-v0.1 / the original Mistral-7B-Instruct template: BOS, "[INST] CONTENT
// [/INST]" per user turn, ANSWER + EOS per assistant turn; a system message raises.
absl::StatusOr<std::string> RenderMistralLegacy(const ChatTemplate& t,
                                                const std::vector<ChatMessage>& m, bool /*gen*/,
                                                const ChatSpecials& sp) {
  AUGUR_RETURN_IF_ERROR(CheckRoles(t, m, /*system_first_only=*/true));
  if (HasLeadingSystem(m)) {
    return absl::InvalidArgumentError(
        Prefix(t) + "this template has no system role; put the instructions in the first "
                    "user message (or use --chat-template mistral)");
  }
  AUGUR_RETURN_IF_ERROR(CheckAlternation(t, m, 0));
  std::string out = sp.bos;
  for (const ChatMessage& msg : m) {
    out += msg.role == "user" ? "[INST] " + msg.content + " [/INST]" : msg.content + sp.eos;
  }
  return out;
}

// Gemma / Gemma-2: <start_of_turn>ROLE\nCONTENT|trim<end_of_turn>\n with assistant spelled
// "model"; a system message raises.
absl::StatusOr<std::string> RenderGemma(const ChatTemplate& t, const std::vector<ChatMessage>& m,
                                        bool gen, const ChatSpecials& sp) {
  AUGUR_RETURN_IF_ERROR(CheckRoles(t, m, /*system_first_only=*/true));
  if (HasLeadingSystem(m)) {
    return absl::InvalidArgumentError(
        Prefix(t) + "this template has no system role; put the instructions in the first "
                    "user message");
  }
  AUGUR_RETURN_IF_ERROR(CheckAlternation(t, m, 0));
  std::string out = t.bos_prefix ? sp.bos : "";
  for (const ChatMessage& msg : m) {
    const std::string role = msg.role == "assistant" ? "model" : msg.role;
    out += "<start_of_turn>" + role + "\n" + PyStrip(msg.content) + "<end_of_turn>\n";
  }
  if (gen) out += "<start_of_turn>model\n";
  return out;
}

// ---------------------------------------------------------------------------------------
// The family table: detection substrings, renderer, stop tokens, system handling.

struct Family {
  const char* name;
  std::vector<const char*> must;      // all of these occur in the Jinja text
  std::vector<const char*> must_not;  // none of these (variants rendered differently)
  RenderFn render;
  std::vector<const char*> end_of_turn;
  SystemRole system;
  void (*read_params)(std::string_view jinja, ChatTemplate* t);  // may be null
  ChatTemplate defaults;  // what ChatTemplateByName gives (family filled in later)
};

const std::vector<Family>& Families() {
  static const std::vector<Family> kFamilies = {
      {"chatml",
       {"<|im_start|>", "<|im_end|>"},
       // dbrx / mpt-chat put "\n" before each turn instead of after it.
       {"'\\n' + '<|im_start|>'"},
       RenderChatml,
       {"<|im_end|>", "<|endoftext|>"},
       SystemRole::kNative,
       [](std::string_view j, ChatTemplate* t) {
         t->default_system = ChatmlDefaultSystem(j);
         t->bos_prefix = StartsWithBos(j);
       },
       {}},
      {"llama3",
       {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
       {},
       RenderLlama3,
       {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"},
       SystemRole::kNative,
       [](std::string_view j, ChatTemplate* t) {
         t->bos_prefix = Has(j, "bos_token");
         t->knowledge_header = Has(j, "Cutting Knowledge Date: December 2023");
         t->date_string = t->knowledge_header ? Llama3Date(j) : "";
       },
       {"", "", true, true, "26 Jul 2024"}},
      {"llama2",
       {"<<SYS>>", "[INST]", "bos_token + '[INST] '"},
       // Llama-2 fine-tunes that inject their own default system prompt.
       {"USE_DEFAULT_PROMPT", "true == true", "DEFAULT_SYSTEM_MESSAGE"},
       RenderLlama2,
       {"</s>"},
       SystemRole::kFoldIntoFirstUser,
       nullptr,
       {}},
      {"mistral",
       {"' [INST] '", "system_message + '\\n\\n'", "eos_token"},
       {"<<SYS>>"},
       RenderMistral,
       {"</s>"},
       SystemRole::kFoldIntoFirstUser,
       nullptr,
       {}},
      {"mistral-legacy",
       {"'[INST] ' + message['content'] + ' [/INST]'", "message['content'] + eos_token",
        "Only user and assistant roles are supported!"},
       {"<<SYS>>", "system_message"},
       RenderMistralLegacy,
       {"</s>"},
       SystemRole::kUnsupported,
       nullptr,
       {}},
      {"gemma",
       {"<start_of_turn>", "<end_of_turn>", "System role not supported"},
       // Gemma 3 folds the system message into the first user turn and takes list content.
       {"first_user_prefix"},
       RenderGemma,
       {"<end_of_turn>", "<eos>"},
       SystemRole::kUnsupported,
       [](std::string_view j, ChatTemplate* t) { t->bos_prefix = StartsWithBos(j); },
       {"", "", true, false, ""}},
  };
  return kFamilies;
}

const Family* FindFamily(std::string_view name) {
  for (const Family& f : Families()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::string NameList() {
  std::string names;
  for (const Family& f : Families()) names += (names.empty() ? "" : ", ") + std::string(f.name);
  return names;
}

// The first characters of the template on one line, for the error message.
std::string Opening(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < 24; ++i) {
    const char c = text[i];
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out.size() < text.size() ? out + " ..." : out;
}

}  // namespace

std::vector<std::string> ChatTemplateNames() {
  std::vector<std::string> names;
  for (const Family& f : Families()) names.push_back(f.name);
  return names;
}

absl::StatusOr<ChatTemplate> DetectChatTemplate(std::string_view jinja_text,
                                                std::string_view source) {
  for (const Family& f : Families()) {
    bool match = true;
    for (const char* s : f.must) match = match && Has(jinja_text, s);
    for (const char* s : f.must_not) match = match && !Has(jinja_text, s);
    if (!match) continue;
    ChatTemplate t;
    t.family = f.name;
    if (f.read_params) f.read_params(jinja_text, &t);
    return t;
  }
  if (jinja_text.find_first_not_of(" \t\n") == std::string_view::npos) {
    return absl::NotFoundError(absl::StrCat("chat template: ", S(source),
                                            ": no chat template; choose one with "
                                            "--chat-template NAME (", NameList(), ")"));
  }
  return absl::NotFoundError(absl::StrCat("chat template: ", S(source),
                                          ": unknown template (starts with '",
                                          Opening(jinja_text), "'); choose one with "
                                          "--chat-template NAME (", NameList(), ")"));
}

absl::StatusOr<ChatTemplate> ChatTemplateByName(std::string_view name) {
  const Family* f = FindFamily(name);
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("chat template: unknown name '", S(name),
                                                   "'; known: ", NameList()));
  }
  ChatTemplate t = f->defaults;
  t.family = f->name;
  return t;
}

absl::StatusOr<std::string> RenderChat(const ChatTemplate& tmpl,
                                       const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, const ChatSpecials& specials) {
  const Family* f = FindFamily(tmpl.family);
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("chat template: unknown family '",
                                                   tmpl.family, "'; known: ", NameList()));
  }
  return f->render(tmpl, messages, add_generation_prompt, specials);
}

std::vector<std::string> EndOfTurnTokens(const ChatTemplate& tmpl) {
  const Family* f = FindFamily(tmpl.family);
  if (f == nullptr) return {};
  return std::vector<std::string>(f->end_of_turn.begin(), f->end_of_turn.end());
}

SystemRole ChatSystemRole(const ChatTemplate& tmpl) {
  const Family* f = FindFamily(tmpl.family);
  return f == nullptr ? SystemRole::kNative : f->system;
}

absl::StatusOr<std::vector<ChatMessage>> ParseMessages(const nlohmann::json& json,
                                                       std::string_view source) {
  const std::string where = absl::StrCat("messages: ", S(source), ": ");
  if (!json.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "expected an array of {\"role\", \"content\"} objects, got ", json.type_name()));
  }
  if (json.empty()) return absl::InvalidArgumentError(where + "empty array");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < json.size(); ++i) {
    const nlohmann::json& item = json[i];
    const std::string at = absl::StrCat(where, "message ", i + 1, " ");
    if (!item.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(at, "is ", item.type_name(),
                                                     ", not an object"));
    }
    for (const auto& [key, value] : item.items()) {
      if (key != "role" && key != "content") {
        return absl::InvalidArgumentError(
            absl::StrCat(at, "has key '", key, "'; only role and content are supported"));
      }
    }
    for (const char* key : {"role", "content"}) {
      if (!item.contains(key) || !item[key].is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(
            at, "needs a string '", key, "'",
            item.contains(key) ? absl::StrCat(", got ", item[key].type_name()) : ""));
      }
    }
    out.push_back({item["role"].get<std::string>(), item["content"].get<std::string>()});
  }
  return out;
}

}  // namespace augur
