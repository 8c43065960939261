// The head (status line and header fields) of a complete, non-streamed HTTP
// answer, private to frontends/. Beast still parses every request and frames
// every streamed answer; complete answers, one per request, are the hot path,
// and Beast's generic serializer (buffer sequences over its field list) cost
// more there than building the answer, so their head is written out here.
// The bytes are the ones Beast would write (tests/frontends/http_head_test.cpp
// holds them side by side).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace thalamus::frontends::http_internal {

struct HeadFields {
  int status = 200;
  unsigned version = 11;  // 10 or 11, as Beast numbers HTTP/1.0 and HTTP/1.1
  bool keep_alive = true;
  std::string_view content_type;
  size_t content_length = 0;
  int retry_after = 0;     // seconds; 0: no Retry-After field
  std::string_view allow;  // "": no Allow field
};

// "HTTP/1.1 200 OK\r\nServer: thalamus\r\n...\r\n\r\n". `content_type` and
// `allow` must not contain CR or LF (they are the server's own constants).
std::string CompleteResponseHead(const HeadFields& fields);

// Appends `value` in decimal, with no allocation beyond `out`'s own growth
// (the JSON bodies of openai_response.cpp use it too).
void AppendDecimal(std::string& out, uint64_t value);

}  // namespace thalamus::frontends::http_internal
