#include "security/api_keys.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace thalamus::security {
namespace {

std::string Sha256(std::string_view text) {
  std::string digest(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(digest.data()),
                     reinterpret_cast<const unsigned char*>(text.data()), text.size());
  return digest;
}

std::string Hex(const std::string& bytes) {
  std::string hex(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  hex.pop_back();
  return hex;
}

int64_t Limit(const std::string& field, const std::string& where) {
  const std::string value = field.substr(field.find('=') + 1);
  if (value.empty() || value.size() > 12 || value.find_first_not_of("0123456789") != std::string::npos) {
    throw KeyError(where + "'" + field + "' is not name=N with N a whole number");
  }
  return std::stoll(value);
}

ApiKey ParseLine(const std::string& line, const std::string& where) {
  std::istringstream fields(line);
  ApiKey key;
  std::string hash;
  fields >> key.name >> hash;
  if (key.name.empty() || hash.rfind("sha256:", 0) != 0 || hash.size() != 7 + 64) {
    throw KeyError(where + "expected NAME sha256:HEX [rpm=N] [tpm=N]");
  }
  key.sha256.assign(crypto_hash_sha256_BYTES, '\0');
  size_t length = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(key.sha256.data()), key.sha256.size(), hash.data() + 7, 64,
                     nullptr, &length, nullptr) != 0 ||
      length != crypto_hash_sha256_BYTES) {
    throw KeyError(where + "the sha256 is not 64 hex digits");
  }
  for (std::string field; fields >> field;) {
    if (field.rfind("rpm=", 0) == 0) {
      key.requests_per_minute = Limit(field, where);
    } else if (field.rfind("tpm=", 0) == 0) {
      key.tokens_per_minute = Limit(field, where);
    } else {
      throw KeyError(where + "unknown field '" + field + "' (rpm=N or tpm=N)");
    }
  }
  return key;
}

}  // namespace

std::shared_ptr<ApiKeys> ApiKeys::Load(const std::string& path) {
  return Parse(ReadKeyFileText(path, "API keys file"), path);
}

std::shared_ptr<ApiKeys> ApiKeys::Parse(const std::string& text, const std::string& source) {
  if (sodium_init() < 0) throw KeyError("libsodium cannot start");
  std::istringstream in(text);
  std::vector<ApiKey> keys;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#') continue;
    const std::string where = source + ":" + std::to_string(number) + ": ";
    ApiKey key = ParseLine(line, where);
    for (const ApiKey& other : keys) {
      if (other.name == key.name) throw KeyError(where + "a second key named '" + key.name + "'");
    }
    keys.push_back(std::move(key));
  }
  return std::make_shared<ApiKeys>(std::move(keys));
}

ApiKeys::ApiKeys(std::vector<ApiKey> keys) : keys_(std::move(keys)), state_(keys_.size()) {
  const Clock::time_point now = Clock::now();
  for (size_t i = 0; i < keys_.size(); ++i) {
    state_[i].requests = {static_cast<double>(keys_[i].requests_per_minute), now};
    state_[i].tokens = {static_cast<double>(keys_[i].tokens_per_minute), now};
  }
}

const ApiKey* ApiKeys::Find(std::string_view presented) const {
  const std::string digest = Sha256(presented);
  const ApiKey* found = nullptr;
  for (const ApiKey& key : keys_) {  // every key, whether or not one matched
    const bool same = sodium_memcmp(digest.data(), key.sha256.data(), digest.size()) == 0;
    if (same) found = &key;
  }
  return found;
}

void ApiKeys::Refill(Bucket& bucket, int64_t per_minute, Clock::time_point now) {
  const double minutes = std::chrono::duration<double>(now - bucket.at).count() / 60.0;
  bucket.level = std::min(static_cast<double>(per_minute), bucket.level + minutes * static_cast<double>(per_minute));
  bucket.at = now;
}

int ApiKeys::Admit(const ApiKey& key, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  State& state = state_[static_cast<size_t>(&key - keys_.data())];
  double wait_minutes = 0;
  if (key.requests_per_minute > 0) {
    Refill(state.requests, key.requests_per_minute, now);
    if (state.requests.level < 1) {
      wait_minutes = (1 - state.requests.level) / static_cast<double>(key.requests_per_minute);
    }
  }
  if (key.tokens_per_minute > 0) {
    Refill(state.tokens, key.tokens_per_minute, now);
    if (state.tokens.level <= 0) {
      wait_minutes = std::max(wait_minutes, (1 - state.tokens.level) / static_cast<double>(key.tokens_per_minute));
    }
  }
  if (wait_minutes > 0) return std::max(1, static_cast<int>(std::ceil(wait_minutes * 60)));
  if (key.requests_per_minute > 0) state.requests.level -= 1;
  return 0;
}

void ApiKeys::Charge(const ApiKey& key, int64_t tokens, Clock::time_point now) {
  if (key.tokens_per_minute <= 0) return;
  std::lock_guard lock(mutex_);
  Bucket& bucket = state_[static_cast<size_t>(&key - keys_.data())].tokens;
  Refill(bucket, key.tokens_per_minute, now);
  bucket.level -= static_cast<double>(tokens);  // may go below zero: the next requests wait it off
}

std::string NewApiKey() {
  if (sodium_init() < 0) throw KeyError("libsodium cannot start");
  std::string bytes(32, '\0');
  randombytes_buf(bytes.data(), bytes.size());
  return "thk-" + Hex(bytes);
}

std::string ApiKeyLine(const std::string& name, std::string_view key, int64_t rpm, int64_t tpm) {
  std::string line = name + " sha256:" + Hex(Sha256(key));
  if (rpm > 0) line += " rpm=" + std::to_string(rpm);
  if (tpm > 0) line += " tpm=" + std::to_string(tpm);
  return line + "\n";
}

}  // namespace thalamus::security
