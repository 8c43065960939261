// The gate's cheap features and the token estimate.
#include "gate/gate_features.h"

#include <gtest/gtest.h>

#include <string>

namespace thalamus::gate {
namespace {

TEST(GateFeatures, CheapFeatures) {
  EXPECT_EQ(GateFeatures("what is 2 + 2?")[2], 1.0f);
  EXPECT_EQ(GateFeatures("hello")[2], 0.0f);
  EXPECT_EQ(GateFeatures("int main() { return 0; }")[1], 1.0f);
  EXPECT_EQ(GateFeatures("a plain sentence")[1], 0.0f);
  EXPECT_LT(GateFeatures("short")[0], GateFeatures(std::string(4000, 'x'))[0]);
  EXPECT_EQ(EstimateTokens(""), 0u);
  EXPECT_EQ(EstimateTokens("abcd"), 1u);
  EXPECT_EQ(EstimateTokens("abcde"), 2u);
}

}  // namespace
}  // namespace thalamus::gate
