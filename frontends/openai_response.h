// openai_response: the wire types -> response bodies of the HTTP front end,
// OpenAI-style (private to frontends/; requests are in openai_request.h).
// The functions never throw on any content (invalid UTF-8 from a model is
// replaced, not an error). Pure functions, thread-safe; StreamEncoder is
// not.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "frontends/openai_request.h"
#include "messages/messages.h"
#include "router/query_service.h"

namespace thalamus::frontends::openai {

// What one answer's chunks share.
struct ResponseIds {
  std::string id;  // "chatcmpl-...", "cmpl-...", "query-..."
  std::string model;
  int64_t created = 0;  // unix seconds
};
ResponseIds NewResponseIds(Api api, const std::string& model);

// The body of a successful non-streamed answer.
std::string ResultJson(Api api, const ResponseIds& ids, const wire::QueryResultT& result);

// The error body; `type` is derived from the status.
std::string ErrorJson(int status, std::string_view message, std::string_view code, std::string_view param = {});
std::string ErrorJson(const ApiError& error);
std::string ErrorJson(const wire::QueryResultT& failed);

// Seconds for Retry-After (rounded up, at least 1); 0 when the result does
// not invite a retry (only OVERLOADED and UNAVAILABLE do).
int RetryAfterSeconds(const wire::QueryResultT& failed);

std::string ModelsJson(const std::vector<router::ServiceInfo>& services, int64_t created);
std::string ReadyJson(bool ready, const std::vector<router::ServiceInfo>& services);

// Turns one streamed answer into the payloads of server-sent events (the JSON
// that follows "data: "). Holds back an incomplete UTF-8 sequence at the end
// of a partial until the next one completes it, so no event splits a
// character. Not thread-safe; one per streamed answer.
class StreamEncoder {
 public:
  StreamEncoder(Api api, ResponseIds ids, bool include_usage);
  // Zero or one event for this piece of text.
  std::vector<std::string> Partial(std::string_view text);
  // The events that end a successful answer: any text of the answer not yet
  // streamed, the chunk with finish_reason, and the usage chunk if asked for.
  std::vector<std::string> Finish(const wire::QueryResultT& result);
  // The event for a failure after the stream started.
  std::string Error(const wire::QueryResultT& failed) const;

 private:
  std::string Delta(std::string_view text);

  Api api_;
  ResponseIds ids_;
  bool include_usage_;
  bool sent_role_ = false;
  std::string held_;      // an incomplete UTF-8 sequence awaiting its tail
  std::string streamed_;  // all text sent so far
};

// The length of the longest prefix of `text` that does not end inside a
// UTF-8 multi-byte sequence (invalid bytes count as complete).
size_t CompleteUtf8Prefix(std::string_view text);

}  // namespace thalamus::frontends::openai
