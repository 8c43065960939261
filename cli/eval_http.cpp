#include "cli/eval_http.h"

#include <regex>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace thalamus::cli {

namespace beast = boost::beast;
namespace http = beast::http;

HttpEndpoint ParseHttpUrl(const std::string& url) {
  static const std::regex kUrl(R"(^http://([^/:]+)(?::([0-9]{1,5}))?(/.*)?$)");
  std::smatch match;
  if (!std::regex_match(url, match, kUrl)) {
    throw std::invalid_argument("'" + url + "' is not an http://host[:port][/path] URL");
  }
  HttpEndpoint endpoint{match[1], match[2].matched ? match[2].str() : "80", match[3].matched ? match[3].str() : ""};
  while (!endpoint.base.empty() && endpoint.base.back() == '/') endpoint.base.pop_back();
  return endpoint;
}

HttpAnswer PostJson(const HttpEndpoint& endpoint, const std::string& target, const std::string& json,
                    std::chrono::milliseconds timeout) {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  try {
    boost::asio::ip::tcp::resolver resolver(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(endpoint.host, endpoint.port));
    http::request<http::string_body> request(http::verb::post, endpoint.base + target, 11);
    request.set(http::field::host, endpoint.host);
    request.set(http::field::content_type, "application/json");
    request.body() = json;
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 << 20);
    http::read(stream, buffer, parser);
    beast::error_code ignored;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    return {static_cast<int>(parser.get().result_int()), parser.get().body()};
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("http://" + endpoint.host + ":" + endpoint.port + endpoint.base + target + ": " +
                             e.code().message());
  }
}

}  // namespace thalamus::cli
