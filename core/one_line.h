// Errors are one line (STYLE.md): text taken from an input (a tensor name, a metadata key, a
// token) may hold newlines or other control characters, so readers pass their messages
// through OneLine, which writes those bytes as \n, \r, \t or \xNN. Everything else, UTF-8
// included, is kept as it is.
#pragma once

#include <string>
#include <string_view>

namespace augur {

inline std::string OneLine(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) out += ch;
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace augur
