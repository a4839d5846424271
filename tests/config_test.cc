#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace augur {
namespace {

TEST(Config, JsonRoundTripKeepsEveryField) {
  for (const auto& p : ModelPresets()) {
    auto back = ModelConfig::FromJson(p.config.ToJson(), p.name);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->ToJson(), p.config.ToJson()) << p.name;
    EXPECT_EQ(back->num_parameters(), p.config.num_parameters());
  }
}

TEST(Config, PresetSizes) {
  auto t = ResolveModelConfig("target-s");
  ASSERT_TRUE(t.ok());
  // 6 layers x (attn 196608 + mlp 540672 + norms 512) + tied embeddings 4096*256 + final norm.
  EXPECT_EQ(t->num_parameters(), 6 * (196608 + 540672 + 512) + 4096 * 256 + 256);
  EXPECT_TRUE(ResolveModelConfig("draft-xs").ok());
}

TEST(Config, ReadsTransformersFields) {
  nlohmann::json j = {{"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 100}, {"hidden_size", 64},
                      {"intermediate_size", 96}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
                      {"num_key_value_heads", 2}, {"max_position_embeddings", 256}, {"rms_norm_eps", 1e-6},
                      {"rope_theta", 1e6}, {"eos_token_id", {5, 6}}, {"hidden_act", "silu"},
                      {"use_sliding_window", false}, {"sliding_window", 32}};
  auto c = ModelConfig::FromJson(j, "x/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->attention_bias);
  EXPECT_EQ(c->eos_token_id, 5);
  EXPECT_EQ(c->head_dim_or_default(), 16);
  EXPECT_EQ(c->sliding_window, 0);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(Config, RefusesWhatItCannotRun) {
  nlohmann::json base = ModelPresets()[0].config.ToJson();
  auto expect_error = [](nlohmann::json j, const std::string& needle) {
    auto c = ModelConfig::FromJson(j, "m/config.json");
    ASSERT_FALSE(c.ok());
    EXPECT_NE(std::string(c.status().message()).find(needle), std::string::npos) << c.status();
    EXPECT_NE(std::string(c.status().message()).find("m/config.json"), std::string::npos);
  };
  auto j = base;
  j["architectures"] = {"GPT2LMHeadModel"};
  expect_error(j, "unsupported architecture 'GPT2LMHeadModel'");
  j = base;
  j["num_key_value_heads"] = 3;
  expect_error(j, "not a multiple");
  j = base;
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act 'gelu'");
  j = base;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  expect_error(j, "rope_scaling type 'llama3'");
  j = base;
  j["hidden_size"] = "wide";
  expect_error(j, "'hidden_size' has the wrong type");
  EXPECT_FALSE(ResolveModelConfig("no-such-preset").ok());
  EXPECT_FALSE(ModelConfig::FromFile("/nonexistent/config.json").ok());
}

}  // namespace
}  // namespace augur
