// openai_request: request bodies of the HTTP front end -> the wire types
// (private to frontends/; the answers are in openai_response.h).
//
// ParseRequest turns a request body into a wire::QueryT, validating every field
// they know; they throw ApiError (status 400 naming the field, e.g.
// "messages[1].role: must be one of system, developer, user, assistant") and
// nothing else. Unknown fields are ignored, as OpenAI clients send many
// optional ones; known features that Thalamus does not implement (n > 1,
// tools, logprobs, echo, ...) are rejected rather than silently ignored.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "messages/messages.h"

namespace thalamus::frontends::openai {

// A request the front end answers with an error, OpenAI-style:
// {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = {}, std::string code = {});
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
  std::string model;  // as the client named it; kRouterModel when absent
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

ParsedRequest ParseRequest(Api api, std::string_view body);

}  // namespace thalamus::frontends::openai
