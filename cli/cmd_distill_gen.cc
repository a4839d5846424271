// augur distill gen: placeholder until its issue lands.
#include <cstdio>

#include "cli/commands.h"

namespace augur::cli {

int RunDistillGen(int, char**, int) {
  std::fprintf(stderr, "augur distill gen: not built yet\n");
  return 1;
}

}  // namespace augur::cli
