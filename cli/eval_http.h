// A blocking HTTP/1.1 client for `thalamus eval` (private to cli/), on
// Boost.Beast: one request per connection, with a timeout.
#pragma once

#include <chrono>
#include <string>

namespace thalamus::cli {

struct HttpEndpoint {
  std::string host;
  std::string port;
  std::string base;  // path prefix, no trailing '/'
};

// Parses "http://host:port[/prefix]"; throws std::invalid_argument otherwise.
HttpEndpoint ParseHttpUrl(const std::string& url);

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// POSTs `json` to endpoint.base + target. Throws std::runtime_error when the
// server cannot be reached or does not answer within `timeout`.
HttpAnswer PostJson(const HttpEndpoint& endpoint, const std::string& target, const std::string& json,
                    std::chrono::milliseconds timeout);

}  // namespace thalamus::cli
