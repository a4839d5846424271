#include "runtime/scheme.h"

#include <absl/strings/str_join.h>

namespace augur {

std::string QuantScheme::name() const {
  if (bits == 8) return "int8";
  return absl::StrCat("int", bits, "-g", group);
}

const std::vector<SchemeEntry>& SchemeTable() {
  static const std::vector<SchemeEntry> table = {
      {"int8", {8, 0}, "per output channel, symmetric (8.0 bits + one f32 scale per row)"},
      {"int4-g32", {4, 32}, "groups of 32 columns, asymmetric (5.3 bits per weight)"},
      {"int4-g64", {4, 64}, "groups of 64 columns, asymmetric (4.6 bits per weight)"},
      {"int4-g128", {4, 128}, "groups of 128 columns, asymmetric (4.3 bits per weight)"},
  };
  return table;
}

absl::StatusOr<QuantScheme> ParseScheme(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& e : SchemeTable()) {
    if (name == e.name) return e.scheme;
    names.push_back(e.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("quantize: unknown scheme '", name, "' (one of ", absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<QuantScheme> SchemeFromFlags(const std::string& scheme, int64_t group, bool group_given) {
  if (scheme == "int8") {
    if (group_given)
      return absl::InvalidArgumentError("quantize: --group applies to int4 only (int8 has one scale per output row)");
    return QuantScheme{8, 0};
  }
  if (scheme == "int4") {
    if (group != 32 && group != 64 && group != 128)
      return absl::InvalidArgumentError(absl::StrCat("quantize: --group ", group, " is not 32, 64 or 128"));
    return QuantScheme{4, group};
  }
  return absl::InvalidArgumentError(absl::StrCat("quantize: unknown --scheme '", scheme, "' (int8 or int4)"));
}

}  // namespace augur
