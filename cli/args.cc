#include "cli/args.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_join.h>

#include <cstdio>

namespace augur::cli {

Args::Args(std::string command, std::string summary, std::string usage)
    : command_(std::move(command)), summary_(std::move(summary)), usage_(std::move(usage)) {}

Args& Args::flag(const std::string& name, const std::string& value_name, const std::string& help,
                 const std::string& default_value, bool required, bool repeated) {
  Spec s;
  s.name = name;
  s.value_name = value_name;
  s.help = help;
  s.def = default_value;
  s.required = required;
  s.repeated = repeated;
  specs_.push_back(s);
  return *this;
}

Args& Args::toggle(const std::string& name, const std::string& help) {
  Spec s;
  s.name = name;
  s.help = help;
  s.is_toggle = true;
  specs_.push_back(s);
  return *this;
}

Args& Args::note(const std::string& text) {
  notes_.push_back(text);
  return *this;
}

const Args::Spec* Args::find(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

absl::Status Args::parse(int argc, char** argv, int first) {
  for (int i = 0; i < argc; ++i) absl::StrAppend(&command_line_, i ? " " : "", argv[i]);
  const Spec* current_list = nullptr;  // a repeated flag still taking values
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      return absl::OkStatus();
    }
    if (a.rfind("--", 0) != 0) {
      if (current_list != nullptr) {
        values_[current_list->name].push_back(a);
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "' (see --help)"));
    }
    current_list = nullptr;
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Spec* s = find(name);
    if (s == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    if (s->is_toggle) {
      if (has_value && value != "true" && value != "false" && value != "1" && value != "0")
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value (or true/false)"));
      values_[name] = {has_value ? value : "true"};
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value (", s->value_name, ")"));
      value = argv[++i];
    }
    if (s->repeated) {
      values_[name].push_back(value);
      current_list = s;
    } else {
      if (values_.count(name)) return absl::InvalidArgumentError(absl::StrCat("--", name, " given twice"));
      values_[name] = {value};
    }
  }
  for (const auto& s : specs_)
    if (s.required && !values_.count(s.name))
      return absl::InvalidArgumentError(absl::StrCat("missing required flag --", s.name, " ", s.value_name));
  return absl::OkStatus();
}

std::string Args::help() const {
  std::string out = absl::StrCat(summary_, "\n\nusage: ", usage_, "\n\nflags:\n");
  for (const auto& s : specs_) {
    std::string left = absl::StrCat("  --", s.name, s.is_toggle ? "" : absl::StrCat(" ", s.value_name));
    if (left.size() < 28) left.resize(28, ' ');
    else left += "\n" + std::string(28, ' ');
    absl::StrAppend(&out, left, s.help);
    if (s.required) absl::StrAppend(&out, " (required)");
    else if (!s.def.empty()) absl::StrAppend(&out, " (default: ", s.def, ")");
    if (s.repeated) absl::StrAppend(&out, " (repeatable)");
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out, "  --help                    show this help\n");
  for (const auto& n : notes_) absl::StrAppend(&out, "\n", n, "\n");
  return out;
}

bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Args::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end() && !it->second.empty()) return it->second.back();
  const Spec* s = find(name);
  return s ? s->def : "";
}

std::vector<std::string> Args::list(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  const Spec* s = find(name);
  if (s && !s->def.empty()) return {s->def};
  return {};
}

absl::StatusOr<int64_t> Args::i64(const std::string& name) const {
  int64_t v;
  const std::string s = str(name);
  if (!absl::SimpleAtoi(s, &v)) return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", s, "' is not an integer"));
  return v;
}

absl::StatusOr<double> Args::f64(const std::string& name) const {
  double v;
  const std::string s = str(name);
  if (!absl::SimpleAtod(s, &v)) return absl::InvalidArgumentError(absl::StrCat("--", name, ": '", s, "' is not a number"));
  return v;
}

bool Args::on(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() && !it->second.empty() && (it->second.back() == "true" || it->second.back() == "1");
}

int Fail(const std::string& command, const absl::Status& st) {
  if (st.ok()) return 0;
  std::fprintf(stderr, "augur %s: %s\n", command.c_str(), std::string(st.message()).c_str());
  return 1;
}

}  // namespace augur::cli
