// Quantization schemes: one table drives parsing, --help and the name written to augur.json.
//   int8       weight-only, per output channel, symmetric: w = q * s, q in [-127, 127]
//   int4-gG    weight-only, per group of G input columns, asymmetric: w = (q - z) * s,
//              q and z in [0, 15], G in {32, 64, 128}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace augur {

struct QuantScheme {
  int bits = 0;       // 8 or 4
  int64_t group = 0;  // int4: columns per group; int8: 0 (one scale per output row)

  std::string name() const;  // "int8", "int4-g32", ...
  bool operator==(const QuantScheme& o) const { return bits == o.bits && group == o.group; }
  bool operator!=(const QuantScheme& o) const { return !(*this == o); }
};

struct SchemeEntry {
  const char* name;
  QuantScheme scheme;
  const char* note;  // one line for --help
};
const std::vector<SchemeEntry>& SchemeTable();

// "int8", "int4-g32", "int4-g64", "int4-g128" (what augur.json stores and --qat takes).
absl::StatusOr<QuantScheme> ParseScheme(const std::string& name);
// The CLI form: --scheme int8|int4 and --group G (group ignored for int8 unless it is given,
// which is an error: int8 has one scale per output row).
absl::StatusOr<QuantScheme> SchemeFromFlags(const std::string& scheme, int64_t group, bool group_given);

}  // namespace augur
