// augur eval: placeholder until its issue lands.
#include <cstdio>

#include "cli/commands.h"

namespace augur::cli {

int RunEval(int, char**, int) {
  std::fprintf(stderr, "augur eval: not built yet\n");
  return 1;
}

int RunBench(int, char**, int) {
  std::fprintf(stderr, "augur bench: not built yet\n");
  return 1;
}

}  // namespace augur::cli
