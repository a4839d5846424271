// augur export: placeholder until its issue lands.
#include <cstdio>

#include "cli/commands.h"

namespace augur::cli {

int RunExport(int, char**, int) {
  std::fprintf(stderr, "augur export: not built yet\n");
  return 1;
}

}  // namespace augur::cli
