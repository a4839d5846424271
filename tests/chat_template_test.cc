// Chat templates (label: unit). Expected strings were rendered by transformers'
// render_jinja_template from the real templates in tests/data/chat_templates/ (the interop
// test tests/python/test_chat_template.py re-checks many more conversations against Jinja).
#include "core/chat_template.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace augur {
namespace {

std::string TemplateText(const std::string& file) {
  const char* root = std::getenv("AUGUR_SOURCE_DIR");
  const std::string path =
      std::string(root ? root : ".") + "/tests/data/chat_templates/" + file + ".jinja";
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ChatTemplate Detect(const std::string& file) {
  auto t = DetectChatTemplate(TemplateText(file), file);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : ChatTemplate{};
}

const std::vector<ChatMessage> kWithSystem = {
    {"system", "You are terse."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "2+2?"}};
const std::vector<ChatMessage> kNoSystem(kWithSystem.begin() + 1, kWithSystem.end());

ChatSpecials Sp(const char* bos, const char* eos, const char* today = "") {
  ChatSpecials sp;
  sp.bos = bos;
  sp.eos = eos;
  sp.today = today;
  return sp;
}

std::string Render(const ChatTemplate& t, const std::vector<ChatMessage>& m,
                   const ChatSpecials& sp = {}, bool gen = true) {
  auto out = RenderChat(t, m, gen, sp);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

std::string RenderError(const ChatTemplate& t, const std::vector<ChatMessage>& m) {
  auto out = RenderChat(t, m, true, ChatSpecials{});
  EXPECT_FALSE(out.ok());
  return out.ok() ? "" : std::string(out.status().message());
}

TEST(ChatTemplate, DetectsEachFamilyFromItsRealTemplate) {
  EXPECT_EQ(Detect("smollm2-135m-instruct").family, "chatml");
  EXPECT_EQ(Detect("qwen2.5-7b-instruct").family, "chatml");
  EXPECT_EQ(Detect("llama-3.1-8b-instruct").family, "llama3");
  EXPECT_EQ(Detect("llama-3.2-3b-instruct").family, "llama3");
  EXPECT_EQ(Detect("llama-2-7b-chat").family, "llama2");
  EXPECT_EQ(Detect("mistral-7b-instruct-v0.2").family, "mistral");
  EXPECT_EQ(Detect("mixtral-8x7b-instruct-v0.1").family, "mistral-legacy");
  EXPECT_EQ(Detect("gemma-2-2b-it").family, "gemma");
}

TEST(ChatTemplate, DetectsParametersFromTheText) {
  EXPECT_EQ(Detect("smollm2-135m-instruct").default_system,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(Detect("qwen2.5-7b-instruct").default_system,
            "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  EXPECT_FALSE(Detect("qwen2.5-7b-instruct").bos_prefix);
  const ChatTemplate l31 = Detect("llama-3.1-8b-instruct");
  EXPECT_TRUE(l31.knowledge_header);
  EXPECT_TRUE(l31.bos_prefix);
  EXPECT_EQ(l31.date_string, "26 Jul 2024");
  EXPECT_EQ(Detect("llama-3.2-3b-instruct").date_string, "");  // strftime_now: today
  EXPECT_TRUE(Detect("gemma-2-2b-it").bos_prefix);

  // Plain ChatML (OpenHermes-2.5) injects nothing; Llama 3.0 has no knowledge header.
  auto plain = DetectChatTemplate(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|im_start|>assistant\\n' }}{% endif %}",
      "openhermes");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->family, "chatml");
  EXPECT_EQ(plain->default_system, "");
  auto l30 = DetectChatTemplate(
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] "
      "| trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content "
      "%}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
      "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
      "llama3.0");
  ASSERT_TRUE(l30.ok()) << l30.status();
  EXPECT_EQ(l30->family, "llama3");
  EXPECT_FALSE(l30->knowledge_header);
  EXPECT_EQ(Render(*l30, kWithSystem, Sp("<|begin_of_text|>", "")),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, UnknownTemplateErrorNamesSourceAndChoices) {
  auto t = DetectChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}",
                              "DIR/tokenizer_config.json");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "chat template: DIR/tokenizer_config.json: unknown template (starts with "
            "'{% for m in messages %}{ ...'); choose one with --chat-template NAME (chatml, "
            "llama3, llama2, mistral, mistral-legacy, gemma)");
  auto multi = DetectChatTemplate("{%- if x %}\n{{ y }}\n{% endif %}", "F");
  ASSERT_FALSE(multi.ok());
  EXPECT_EQ(std::string(multi.status().message()).find('\n'), std::string::npos);
  auto empty = DetectChatTemplate("  \n", "GGUF");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(),
            "chat template: GGUF: no chat template; choose one with --chat-template NAME "
            "(chatml, llama3, llama2, mistral, mistral-legacy, gemma)");
}

TEST(ChatTemplate, ByName) {
  EXPECT_EQ(ChatTemplateNames(), (std::vector<std::string>{"chatml", "llama3", "llama2",
                                                           "mistral", "mistral-legacy",
                                                           "gemma"}));
  for (const std::string& name : ChatTemplateNames()) {
    auto t = ChatTemplateByName(name);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->family, name);
    EXPECT_FALSE(EndOfTurnTokens(*t).empty()) << name;
  }
  auto bad = ChatTemplateByName("vicuna");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "chat template: unknown name 'vicuna'; known: chatml, llama3, llama2, mistral, "
            "mistral-legacy, gemma");
  // By name, llama3 is Llama 3.1 and renders like the detected 3.1 template.
  EXPECT_EQ(Render(*ChatTemplateByName("llama3"), kWithSystem, Sp("<|begin_of_text|>", "")),
            Render(Detect("llama-3.1-8b-instruct"), kWithSystem, Sp("<|begin_of_text|>", "")));
}

TEST(ChatTemplate, RendersChatmlWithAndWithoutDefaultSystem) {
  const ChatTemplate smol = Detect("smollm2-135m-instruct");
  EXPECT_EQ(Render(smol, kNoSystem),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
            "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "Hello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(Render(smol, kWithSystem),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(Render(Detect("qwen2.5-7b-instruct"), kNoSystem),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "Hello.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  // Without the generation prompt the text ends after the last turn.
  EXPECT_EQ(Render(smol, {{"user", "Hi"}}, {}, /*gen=*/false),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
            "Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(EndOfTurnTokens(smol), (std::vector<std::string>{"<|im_end|>", "<|endoftext|>"}));
}

TEST(ChatTemplate, RendersLlama3) {
  const ChatTemplate t = Detect("llama-3.1-8b-instruct");
  const ChatSpecials sp = Sp("<|begin_of_text|>", "<|eot_id|>");
  EXPECT_EQ(Render(t, kWithSystem, sp),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
            "Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
            "assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
            "\n\n");
  EXPECT_EQ(Render(t, kNoSystem, sp),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge "
            "Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
            "assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user"
            "<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
            "\n\n");
  // Llama 3.2 prints today's date; ChatSpecials::today fixes it.
  const std::string l32 =
      Render(Detect("llama-3.2-3b-instruct"), {{"user", "Hi"}}, Sp("<B>", "", "02 Dec 2025"));
  EXPECT_EQ(l32,
            "<B><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
            "2023\nToday Date: 02 Dec 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
            "\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(EndOfTurnTokens(t),
            (std::vector<std::string>{"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}));
}

TEST(ChatTemplate, RendersLlama2WithSystemFoldedIntoFirstUserTurn) {
  const ChatTemplate t = Detect("llama-2-7b-chat");
  EXPECT_EQ(Render(t, kWithSystem),
            "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] "
            "2+2? [/INST]");
  EXPECT_EQ(ChatSystemRole(t), SystemRole::kFoldIntoFirstUser);
}

TEST(ChatTemplate, RendersMistral) {
  EXPECT_EQ(Render(Detect("mistral-7b-instruct-v0.2"), kWithSystem),
            "<s> [INST] You are terse.\n\nHi [/INST] Hello.</s> [INST] 2+2? [/INST]");
  EXPECT_EQ(Render(Detect("mixtral-8x7b-instruct-v0.1"), kNoSystem),
            "<s>[INST] Hi [/INST]Hello.</s>[INST] 2+2? [/INST]");
}

TEST(ChatTemplate, RendersGemma) {
  EXPECT_EQ(Render(Detect("gemma-2-2b-it"), kNoSystem, Sp("<bos>", "<eos>", "")),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello."
            "<end_of_turn>\n<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, TrimIsPythonStrip) {
  // Jinja's trim is Python's str.strip(): Unicode spaces (U+00A0, U+3000) go, other text
  // (U+200B zero-width space is not whitespace to Python) stays.
  const ChatTemplate t = Detect("gemma-2-2b-it");
  EXPECT_EQ(Render(t, {{"user", "\xC2\xA0 \t\nh\xC3\xA9llo\n\xE3\x80\x80"}}, Sp("", "", "")),
            "<start_of_turn>user\nh\xC3\xA9llo<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(Render(t, {{"user", "\xE2\x80\x8Bx\xE2\x80\x8B"}}, Sp("", "", "")),
            "<start_of_turn>user\n\xE2\x80\x8Bx\xE2\x80\x8B<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, BadConversationsGiveOneLineErrors) {
  const ChatTemplate chatml = Detect("smollm2-135m-instruct");
  EXPECT_EQ(RenderError(chatml, {}),
            "chat template chatml: empty conversation; give at least one user message");
  EXPECT_EQ(RenderError(chatml, {{"user", "a"}, {"tool", "b"}}),
            "chat template chatml: message 2 has role 'tool'; expected system, user or "
            "assistant");
  const ChatTemplate llama2 = Detect("llama-2-7b-chat");
  EXPECT_EQ(RenderError(llama2, {{"user", "a"}, {"user", "b"}}),
            "chat template llama2: message 2 has role 'user' where 'assistant' was expected; "
            "after the optional system message roles must alternate user/assistant");
  EXPECT_EQ(RenderError(llama2, {{"system", "s"}, {"assistant", "b"}}),
            "chat template llama2: message 2 has role 'assistant' where 'user' was expected; "
            "after the optional system message roles must alternate user/assistant");
  EXPECT_EQ(RenderError(llama2, {{"system", "s"}}),
            "chat template llama2: no user message after the system message");
  EXPECT_EQ(RenderError(Detect("mistral-7b-instruct-v0.2"),
                        {{"user", "a"}, {"assistant", "b"}, {"system", "c"}}),
            "chat template mistral: message 3 is a system message; this template takes one, "
            "first");
  EXPECT_EQ(RenderError(Detect("gemma-2-2b-it"), kWithSystem),
            "chat template gemma: this template has no system role; put the instructions in "
            "the first user message");
  EXPECT_EQ(RenderError(Detect("mixtral-8x7b-instruct-v0.1"), kWithSystem),
            "chat template mistral-legacy: this template has no system role; put the "
            "instructions in the first user message (or use --chat-template mistral)");
  ChatTemplate unknown;
  unknown.family = "nope";
  EXPECT_EQ(RenderError(unknown, kNoSystem),
            "chat template: unknown family 'nope'; known: chatml, llama3, llama2, mistral, "
            "mistral-legacy, gemma");
}

TEST(ChatTemplate, ParseMessagesValidatesShape) {
  auto ok = ParseMessages(nlohmann::json::parse(
                              R"([{"role":"user","content":"h\u00e9\n"},{"content":"x","role":"assistant"}])"),
                          "p.jsonl:1");
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[0].role, "user");
  EXPECT_EQ((*ok)[0].content, "h\xC3\xA9\n");
  EXPECT_EQ((*ok)[1].role, "assistant");

  auto err = [](const char* text) {
    auto r = ParseMessages(nlohmann::json::parse(text), "p.jsonl:3");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : std::string(r.status().message());
  };
  EXPECT_EQ(err(R"({"role":"user"})"),
            "messages: p.jsonl:3: expected an array of {\"role\", \"content\"} objects, got "
            "object");
  EXPECT_EQ(err("[]"), "messages: p.jsonl:3: empty array");
  EXPECT_EQ(err(R"(["hi"])"), "messages: p.jsonl:3: message 1 is string, not an object");
  EXPECT_EQ(err(R"([{"role":"user","content":"a"},{"role":"user"}])"),
            "messages: p.jsonl:3: message 2 needs a string 'content'");
  EXPECT_EQ(err(R"([{"role":1,"content":"a"}])"),
            "messages: p.jsonl:3: message 1 needs a string 'role', got number");
  EXPECT_EQ(err(R"([{"role":"assistant","content":null,"tool_calls":[]}])"),
            "messages: p.jsonl:3: message 1 has key 'tool_calls'; only role and content are "
            "supported");
}

}  // namespace
}  // namespace augur
