// Tiny random Llama models for the NAT tests (vocab 61: ids 0-4 reserved, 4 = <mask>).
#pragma once

#include <torch/torch.h>

#include "core/config.h"
#include "core/model.h"
#include "tests/tiny_model.h"

namespace augur::nattest {

inline ModelConfig Tiny(int64_t layers, int64_t hidden) { return tiny::Config(layers, hidden, 61); }
using tiny::Random;

}  // namespace augur::nattest
