// `--drafter SPEC`: one table of drafter kinds (name, argument syntax, help, factory)
// drives parsing, --help and construction. SPEC = KIND[:ARG], e.g. ar:DIR, nat:DIR,
// ngram:FILE.h5, prompt-lookup, prompt-lookup:n=4,min=2.
//
// Plugging in a kind (NAT, ngram) = filling its `make` in DrafterKinds() (drafter_registry.cc).
// Several drafters joined with '+' (ar:DIR+prompt-lookup) name a drafter set for the
// token-tree engine; MakeDrafter refuses sets until that engine is built in.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "eval/drafter.h"

namespace augur {

// What a drafter must agree with and be sized for.
struct DrafterContext {
  const ModelConfig* target_config = nullptr;
  std::string target_dir;
  std::string target_tokenizer_fingerprint;  // "" when the target records none
  c10::Device device = c10::kCPU;
  int64_t capacity = 0;  // the longest context the drafter will see (prompt + max_new + gamma + 1)
};

struct DrafterKind {
  std::string kind;    // "ar"
  std::string syntax;  // "ar:DIR"
  std::string help;
  // null: not available in this build (the kind's module has not landed).
  absl::StatusOr<std::unique_ptr<Drafter>> (*make)(const std::string& arg, const DrafterContext& ctx) = nullptr;
};

const std::vector<DrafterKind>& DrafterKinds();
// The --help paragraph listing every kind.
std::string DrafterSpecHelp();
// True when SPEC runs on the token-tree engine: a '+'-joined set, or a drafter that drafts a
// tree by itself (eagle:DIR,tree).
bool DrafterSpecIsTree(const std::string& spec);
// Parses and builds; one-line errors name the spec and the problem.
absl::StatusOr<std::unique_ptr<Drafter>> MakeDrafter(const std::string& spec, const DrafterContext& ctx);

}  // namespace augur
