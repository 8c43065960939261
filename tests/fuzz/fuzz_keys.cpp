// Fuzz target: the key files the router and the experts read at start-up
// (security/): a CURVE key file (first byte even) or the HTTP API keys file
// (odd). Each parser returns or throws KeyError, and nothing else; every key
// it returns is a well-formed Z85 key or a 32-byte hash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "security/api_keys.h"
#include "security/curve_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (data[0] % 2 == 0) {
      for (const auto& [name, key] : thalamus::security::ParseKeyFields(text, "fuzz.key")) {
        if (key.size() != 40) std::abort();
      }
    } else {
      const auto keys = thalamus::security::ApiKeys::Parse(text, "api-keys");
      (void)keys->Find(text);
    }
  } catch (const thalamus::security::KeyError&) {
  }
  return 0;
}
