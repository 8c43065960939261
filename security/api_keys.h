// ApiKeys: the HTTP API's bearer keys, stored hashed, with per-key limits.
//
// The keys file (`thalamus keys api` appends to it) has one line per key:
//   NAME sha256:HEX [rpm=N] [tpm=N]
// NAME labels the key in logs and metrics (the key itself is never logged or
// stored); HEX is the SHA-256 of the key; rpm and tpm are requests and tokens
// per minute (0 or absent: unlimited), enforced as token buckets that refill
// continuously and hold one minute's worth. '#' starts a comment.
//
// Errors: Load throws KeyError naming the file and line. Thread-safe: Find
// and the limiter may run on every HTTP thread at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "security/curve_keys.h"

namespace thalamus::security {

struct ApiKey {
  std::string name;
  std::string sha256;  // 32 bytes, raw
  int64_t requests_per_minute = 0;
  int64_t tokens_per_minute = 0;
};

class ApiKeys {
 public:
  using Clock = std::chrono::steady_clock;

  static std::shared_ptr<ApiKeys> Load(const std::string& path);
  // The same from the file's text; `source` names it in errors.
  static std::shared_ptr<ApiKeys> Parse(const std::string& text, const std::string& source);
  explicit ApiKeys(std::vector<ApiKey> keys);

  // The key whose hash matches `presented`, or null. Compares every stored
  // hash in constant time, so timing tells nothing about near misses.
  const ApiKey* Find(std::string_view presented) const;

  // Admits one request of `key` now: 0 when admitted (a request is taken from
  // its bucket), else the seconds until a retry can succeed (rpm exhausted, or
  // the token bucket spent by earlier answers).
  int Admit(const ApiKey& key, Clock::time_point now = Clock::now());
  // Charges the tokens an answer used (prompt + completion).
  void Charge(const ApiKey& key, int64_t tokens, Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double level = 0;  // what is left, refilled at capacity per minute
    Clock::time_point at;
  };
  struct State {
    Bucket requests;
    Bucket tokens;
  };
  static void Refill(Bucket& bucket, int64_t per_minute, Clock::time_point now);

  std::vector<ApiKey> keys_;
  std::mutex mutex_;
  std::vector<State> state_;  // parallel to keys_
};

// A new random key ("thk-" and 64 hex digits) and the line for the keys file.
std::string NewApiKey();
std::string ApiKeyLine(const std::string& name, std::string_view key, int64_t rpm, int64_t tpm);

}  // namespace thalamus::security
