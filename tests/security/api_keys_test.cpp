// API keys: the keys file, constant-time lookup by hash, and the per-key
// token buckets on a clock the test moves.
#include "security/api_keys.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/support/process.h"

namespace thalamus::security {
namespace {

using namespace std::chrono_literals;

TEST(ApiKeys, FindsKeysByTheirHashOnly) {
  testing::TempDir dir;
  const std::string a = NewApiKey(), b = NewApiKey();
  EXPECT_EQ(a.rfind("thk-", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 64u);
  EXPECT_NE(a, b);
  const std::string file = dir.Write("keys", "# comment\n\n" + ApiKeyLine("a", a, 10, 0) + ApiKeyLine("b", b, 0, 500));
  EXPECT_EQ(testing::ReadFile(file).find(a), std::string::npos);  // only hashes are stored
  auto keys = ApiKeys::Load(file);
  ASSERT_NE(keys->Find(a), nullptr);
  EXPECT_EQ(keys->Find(a)->name, "a");
  EXPECT_EQ(keys->Find(a)->requests_per_minute, 10);
  EXPECT_EQ(keys->Find(b)->tokens_per_minute, 500);
  EXPECT_EQ(keys->Find(a.substr(0, a.size() - 1)), nullptr);
  EXPECT_EQ(keys->Find(""), nullptr);
}

TEST(ApiKeys, BadFilesAreErrorsNamingFileAndLine) {
  testing::TempDir dir;
  const auto error_of = [&](const std::string& text) {
    try {
      ApiKeys::Load(dir.Write("keys", text));
    } catch (const KeyError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string line = ApiKeyLine("a", NewApiKey(), 0, 0);
  EXPECT_NE(error_of("a plain-secret\n").find("keys:1: expected NAME sha256:HEX"), std::string::npos);
  EXPECT_NE(error_of("\na sha256:" + std::string(64, 'z') + "\n").find("keys:2: the sha256 is not 64 hex digits"),
            std::string::npos);
  EXPECT_NE(error_of(line.substr(0, line.size() - 1) + " rpm=ten\n").find("'rpm=ten' is not name=N"),
            std::string::npos);
  EXPECT_NE(error_of(line.substr(0, line.size() - 1) + " burst=3\n").find("unknown field 'burst=3'"),
            std::string::npos);
  EXPECT_NE(error_of(line + line).find("keys:2: a second key named 'a'"), std::string::npos);
  EXPECT_EQ(error_of(""), "");  // an empty file is fine: no key gets in
  try {
    ApiKeys::Load(dir.path() + "/missing");
    FAIL();
  } catch (const KeyError& e) {
    EXPECT_NE(std::string(e.what()).find("missing: cannot read"), std::string::npos);
  }
}

TEST(ApiKeys, LimitsAreTokenBucketsThatRefillOverAMinute) {
  testing::TempDir dir;
  const std::string a = NewApiKey(), b = NewApiKey(), free = NewApiKey();
  auto keys = ApiKeys::Load(
      dir.Write("keys", ApiKeyLine("rpm", a, 2, 0) + ApiKeyLine("tpm", b, 0, 100) + ApiKeyLine("free", free, 0, 0)));
  const ApiKey& by_requests = *keys->Find(a);
  const ApiKey& by_tokens = *keys->Find(b);
  const auto t0 = ApiKeys::Clock::now();
  EXPECT_EQ(keys->Admit(by_requests, t0), 0);
  EXPECT_EQ(keys->Admit(by_requests, t0), 0);
  EXPECT_EQ(keys->Admit(by_requests, t0), 30);       // one request refills in 30 s at 2 per minute
  EXPECT_EQ(keys->Admit(by_requests, t0 + 29s), 1);  // not yet
  EXPECT_EQ(keys->Admit(by_requests, t0 + 30s), 0);
  EXPECT_EQ(keys->Admit(by_requests, t0 + 10min), 0);  // a bucket holds one minute's worth, no more
  EXPECT_EQ(keys->Admit(by_requests, t0 + 10min), 0);
  EXPECT_GT(keys->Admit(by_requests, t0 + 10min), 0);

  EXPECT_EQ(keys->Admit(by_tokens, t0), 0);
  keys->Charge(by_tokens, 160, t0);           // an answer that used more than the minute's 100
  EXPECT_EQ(keys->Admit(by_tokens, t0), 37);  // 61 tokens to earn back at 100 per minute
  EXPECT_EQ(keys->Admit(by_tokens, t0 + 37s), 0);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(keys->Admit(*keys->Find(free), t0), 0);
}

}  // namespace
}  // namespace thalamus::security
