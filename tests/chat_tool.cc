// Test support, not a gtest: renders a conversation with core/chat_template so that
// tests/python/test_chat_template.py can compare it with Jinja.
//   chat_tool render --template-file F [--family NAME] --messages JSON
//                    [--no-generation-prompt] [--bos TEXT] [--eos TEXT] [--today TEXT]
//     prints the rendered text (no newline added)
//   chat_tool detect --template-file F
//     prints {"family", "default_system", "bos_prefix", "knowledge_header", "date_string"}
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "core/chat_template.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "chat_tool: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: chat_tool render|detect --template-file F ...");
  const std::string command = argv[1];
  std::string template_file, family, messages_json;
  bool generation_prompt = true;
  augur::ChatSpecials specials;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (arg == "--template-file") ok = value(&template_file);
    else if (arg == "--family") ok = value(&family);
    else if (arg == "--messages") ok = value(&messages_json);
    else if (arg == "--bos") ok = value(&specials.bos);
    else if (arg == "--eos") ok = value(&specials.eos);
    else if (arg == "--today") ok = value(&specials.today);
    else if (arg == "--no-generation-prompt") generation_prompt = false;
    else return Fail("unknown argument " + arg);
    if (!ok) return Fail(arg + " needs a value");
  }

  absl::StatusOr<augur::ChatTemplate> tmpl = absl::InvalidArgumentError("no template");
  if (!family.empty()) {
    tmpl = augur::ChatTemplateByName(family);
  } else {
    if (template_file.empty()) return Fail("give --template-file or --family");
    std::ifstream in(template_file, std::ios::binary);
    if (!in) return Fail("cannot read " + template_file);
    std::stringstream text;
    text << in.rdbuf();
    tmpl = augur::DetectChatTemplate(text.str(), template_file);
  }
  if (!tmpl.ok()) return Fail(std::string(tmpl.status().message()));

  if (command == "detect") {
    nlohmann::json out = {{"family", tmpl->family},
                          {"default_system", tmpl->default_system},
                          {"bos_prefix", tmpl->bos_prefix},
                          {"knowledge_header", tmpl->knowledge_header},
                          {"date_string", tmpl->date_string},
                          {"end_of_turn", augur::EndOfTurnTokens(*tmpl)}};
    std::cout << out.dump() << "\n";
    return 0;
  }
  if (command != "render") return Fail("unknown command " + command);

  const nlohmann::json parsed = nlohmann::json::parse(messages_json, nullptr, false);
  if (parsed.is_discarded()) return Fail("--messages is not valid JSON");
  auto messages = augur::ParseMessages(parsed, "--messages");
  if (!messages.ok()) return Fail(std::string(messages.status().message()));
  auto text = augur::RenderChat(*tmpl, *messages, generation_prompt, specials);
  if (!text.ok()) return Fail(std::string(text.status().message()));
  std::fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}
