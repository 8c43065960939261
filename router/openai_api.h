// openai_api: the JSON of the HTTP front end <-> the wire types (private to router/).
//
// Parse*Request turn a request body into a wire::QueryT, validating every field
// they know; they throw ApiError (status 400 naming the field, e.g.
// "messages[1].role: must be one of system, developer, user, assistant") and
// nothing else. Unknown fields are ignored, as OpenAI clients send many
// optional ones; known features that Thalamus does not implement (n > 1,
// tools, logprobs, echo, ...) are rejected rather than silently ignored.
// The *Json functions build response bodies; they never throw on any content
// (invalid UTF-8 from a model is replaced, not an error).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "messages/messages.h"
#include "router/query_service.h"

namespace thalamus::router::openai {

// A request the front end answers with an error, OpenAI-style:
// {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = {},
           std::string code = {});
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string param_;
  std::string code_;
};

// The model name that lets the gate choose the experts.
inline constexpr std::string_view kRouterModel = "thalamus";
// The most tokens one request may ask for; more is a client bug.
inline constexpr int kMaxTokensLimit = 1 << 20;

enum class Api { kChat, kCompletion, kQuery };

struct ParsedRequest {
  wire::QueryT query;
  std::string model;           // as the client named it; kRouterModel when absent
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

ParsedRequest ParseRequest(Api api, std::string_view body);

// What one answer's chunks share.
struct ResponseIds {
  std::string id;              // "chatcmpl-...", "cmpl-...", "query-..."
  std::string model;
  int64_t created = 0;         // unix seconds
};
ResponseIds NewResponseIds(Api api, const std::string& model);

// The body of a successful non-streamed answer.
std::string ResultJson(Api api, const ResponseIds& ids, const wire::QueryResultT& result);

// The error body; `type` is derived from the status.
std::string ErrorJson(int status, std::string_view message, std::string_view code,
                      std::string_view param = {});
std::string ErrorJson(const ApiError& error);
std::string ErrorJson(const wire::QueryResultT& failed);

// Seconds for Retry-After (rounded up, at least 1); 0 when the result does
// not invite a retry (only OVERLOADED and UNAVAILABLE do).
int RetryAfterSeconds(const wire::QueryResultT& failed);

std::string ModelsJson(const std::vector<ServiceInfo>& services, int64_t created);
std::string ReadyJson(bool ready, const std::vector<ServiceInfo>& services);

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

}  // namespace thalamus::router::openai
