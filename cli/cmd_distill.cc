// augur distill ar: placeholder until its issue lands.
#include <cstdio>

#include "cli/commands.h"

namespace augur::cli {

int RunDistillNat(int, char**, int) {
  std::fprintf(stderr, "augur distill nat: not built yet\n");
  return 1;
}

}  // namespace augur::cli
