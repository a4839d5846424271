// augur distill ar: placeholder until its issue lands.
#include <cstdio>

#include "cli/commands.h"

namespace augur::cli {

}  // namespace augur::cli
