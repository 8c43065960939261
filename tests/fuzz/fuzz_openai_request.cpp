// Fuzz target: the HTTP front end's request parsing (frontends/openai_request.h)
// for the three APIs. The first byte picks the API, the rest is the body.
// ParseRequest may throw ApiError (a 400) and nothing else.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "frontends/openai_request.h"

using thalamus::frontends::openai::Api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static constexpr Api kApis[] = {Api::kChat, Api::kCompletion, Api::kQuery};
  const Api api = kApis[data[0] % 3];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    (void)thalamus::frontends::openai::ParseRequest(api, body);
  } catch (const thalamus::frontends::openai::ApiError&) {
  }
  return 0;
}
