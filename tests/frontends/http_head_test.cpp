// The hand-written head of complete answers against the bytes Beast writes for
// the same response, for each field that can appear.
#include "frontends/http_head.h"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <sstream>

namespace thalamus::frontends::http_internal {
namespace {

namespace http = boost::beast::http;

std::string BeastBytes(const HeadFields& fields, const std::string& body) {
  http::response<http::string_body> response(static_cast<http::status>(fields.status), fields.version);
  response.set(http::field::server, "thalamus");
  response.set(http::field::content_type, std::string(fields.content_type));
  if (fields.retry_after > 0) response.set(http::field::retry_after, std::to_string(fields.retry_after));
  if (!fields.allow.empty()) response.set(http::field::allow, std::string(fields.allow));
  response.keep_alive(fields.keep_alive);
  response.body() = body;
  response.prepare_payload();
  std::ostringstream bytes;
  bytes << response;
  return bytes.str();
}

std::string OurBytes(HeadFields fields, const std::string& body) {
  fields.content_length = body.size();
  return CompleteResponseHead(fields) + body;
}

TEST(HttpHeadTest, MatchesBeastForEveryFieldAndVersion) {
  const std::string body = R"({"id":"chatcmpl-1","object":"chat.completion"})";
  for (unsigned version : {10u, 11u}) {
    for (bool keep_alive : {true, false}) {
      for (int status : {200, 400, 404, 405, 413, 429, 500, 503}) {
        HeadFields fields;
        fields.status = status;
        fields.version = version;
        fields.keep_alive = keep_alive;
        fields.content_type = "application/json";
        if (status == 429 || status == 503) fields.retry_after = 2;
        if (status == 405) fields.allow = "POST";
        SCOPED_TRACE("HTTP/" + std::to_string(version) + " " + std::to_string(status) +
                     (keep_alive ? " keep-alive" : " close"));
        fields.content_length = body.size();
        EXPECT_EQ(OurBytes(fields, body), BeastBytes(fields, body));
      }
    }
  }
}

TEST(HttpHeadTest, EmptyBodyAndOtherContentType) {
  HeadFields fields;
  fields.content_type = "text/plain; version=0.0.4; charset=utf-8";
  EXPECT_EQ(OurBytes(fields, ""), BeastBytes(fields, ""));
  EXPECT_EQ(CompleteResponseHead(fields),
            "HTTP/1.1 200 OK\r\nServer: thalamus\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace thalamus::frontends::http_internal
