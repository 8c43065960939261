#include "frontends/http_head.h"

#include <boost/beast/http/status.hpp>
#include <charconv>
#include <ostream>  // status.hpp's string_view printing needs it complete

namespace thalamus::frontends::http_internal {

namespace {

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void AppendDecimal(std::string& out, uint64_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

std::string CompleteResponseHead(const HeadFields& fields) {
  namespace http = boost::beast::http;
  std::string out;
  out.reserve(160);
  out += fields.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  AppendDecimal(out, static_cast<uint64_t>(fields.status));
  out += ' ';
  const auto reason = http::obsolete_reason(static_cast<http::status>(fields.status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  AppendField(out, "Server", "thalamus");
  AppendField(out, "Content-Type", fields.content_type);
  if (fields.retry_after > 0) {
    out += "Retry-After: ";
    AppendDecimal(out, static_cast<uint64_t>(fields.retry_after));
    out += "\r\n";
  }
  if (!fields.allow.empty()) AppendField(out, "Allow", fields.allow);
  // HTTP/1.1 keeps a connection open unless told otherwise; 1.0 the reverse.
  if (fields.version >= 11 && !fields.keep_alive) AppendField(out, "Connection", "close");
  if (fields.version < 11 && fields.keep_alive) AppendField(out, "Connection", "keep-alive");
  out += "Content-Length: ";
  AppendDecimal(out, fields.content_length);
  out += "\r\n\r\n";
  return out;
}

}  // namespace thalamus::frontends::http_internal
