// One connection of the HTTP front end (see http_session.h).
#include "frontends/http_session.h"

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "frontends/http_head.h"
#include "frontends/openai_request.h"
#include "frontends/openai_response.h"

namespace thalamus::frontends::http_internal {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// A client gets this long to send a request, or to take a chunk of the answer.
constexpr auto kIoTimeout = std::chrono::seconds(60);
// How long (idle) and how much a closing connection drains the client's
// unread request, so that the error we sent is not lost to a TCP reset.
constexpr auto kLingerTimeout = std::chrono::milliseconds(500);
constexpr size_t kLingerBytes = 4 << 20;

enum class RouteId { kChat, kCompletion, kQuery, kModels, kHealth, kReady, kMetrics };

struct Route {
  std::string_view path;
  http::verb method;
  RouteId id;
};

constexpr Route kRoutes[] = {
    {"/v1/chat/completions", http::verb::post, RouteId::kChat},
    {"/v1/completions", http::verb::post, RouteId::kCompletion},
    {"/v1/query", http::verb::post, RouteId::kQuery},
    {"/v1/models", http::verb::get, RouteId::kModels},
    {"/healthz", http::verb::get, RouteId::kHealth},
    {"/readyz", http::verb::get, RouteId::kReady},
    {"/metrics", http::verb::get, RouteId::kMetrics},
};

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// A request that broke HTTP's syntax, as opposed to a closed or idle socket.
bool IsSyntaxError(beast::error_code ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

const Route* FindRoute(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  for (const Route& route : kRoutes) {
    if (route.path == path) return &route;
  }
  return nullptr;
}

// application/json, with an optional charset that must be UTF-8. A missing
// Content-Type is taken as JSON.
bool IsJsonContentType(std::string_view value) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  if (trim(value).empty()) return true;
  size_t semicolon = value.find(';');
  if (lower(trim(value.substr(0, semicolon))) != "application/json") return false;
  while (semicolon != std::string_view::npos) {
    value.remove_prefix(semicolon + 1);
    semicolon = value.find(';');
    std::string param = lower(trim(value.substr(0, semicolon)));
    if (param.rfind("charset=", 0) == 0 && param != "charset=utf-8" && param != "charset=\"utf-8\"") {
      return false;
    }
  }
  return true;
}

// The token of `Authorization: Bearer TOKEN`; "" for anything else.
std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), header.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      })) {
    return {};
  }
  return header.substr(kScheme.size());
}

openai::Api ApiOf(RouteId id) {
  if (id == RouteId::kChat) return openai::Api::kChat;
  if (id == RouteId::kCompletion) return openai::Api::kCompletion;
  return openai::Api::kQuery;
}

class Session : public Connection, public std::enable_shared_from_this<Session> {
 public:
  Session(SessionSocket socket, std::shared_ptr<const ServerContext> context)
      : executor_(socket.get_executor()),
        stream_(std::move(socket)),
        context_(std::move(context)),
        waiting_(executor_) {}

  ~Session() override { context_->connections->Remove(this); }

  void Run() {
    context_->connections->Add(shared_from_this());
    net::dispatch(executor_, [self = shared_from_this()] { self->ReadHeader(); });
  }

  void Shutdown() override {
    waiting_.cancel();
    Close();
  }

 private:
  struct Outgoing {
    enum Kind { kHead, kChunk, kLast } kind;
    std::string data;
  };

  // --- reading -------------------------------------------------------------
  void ReadHeader() {
    parser_.emplace();
    parser_->body_limit(context_->config.max_body_bytes);
    read_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(context_->config.read_timeout_ms);
    stream_.expires_at(read_deadline_);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    started_ = Clock::now();
    if (ec) return OnReadError(ec);
    const auto& request = parser_->get();
    if (beast::iequals(request[http::field::expect], "100-continue")) {
      // curl waits a second for this before it sends a body over 1 KiB.
      auto response = std::make_shared<http::response<http::empty_body>>(http::status::continue_, request.version());
      http::async_write(stream_, *response, [self = shared_from_this(), response](beast::error_code ec, size_t) {
        if (ec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    stream_.expires_at(read_deadline_);  // the header's deadline: header and body together
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      self->Handle();
    });
  }

  void OnReadError(beast::error_code ec) {
    const bool header_done = parser_->is_header_done();
    route_label_ = "other";
    if (header_done) {
      const Route* route = FindRoute(View(parser_->get().target()));
      if (route) route_label_ = std::string(route->path);
    }
    keep_alive_ = false;
    version_ = header_done ? parser_->get().version() : 11;
    if (ec == http::error::body_limit) {
      return RespondError(413, "the request body exceeds " + std::to_string(context_->config.max_body_bytes) + " bytes",
                          "body_too_large");
    }
    if (ec == http::error::header_limit) {
      return RespondError(431, "the request header is too large", "header_too_large");
    }
    // An HTTP syntax error deserves an answer; a closed or idle socket does not.
    if (IsSyntaxError(ec)) {
      return RespondError(400, "malformed HTTP request: " + ec.message(), "bad_request");
    }
    Close();
  }

  // --- routing -------------------------------------------------------------
  void Handle() {
    const auto& request = parser_->get();
    keep_alive_ = request.keep_alive();
    version_ = request.version();
    const Route* route = FindRoute(View(request.target()));
    route_label_ = route ? std::string(route->path) : "other";
    if (!route) {
      return RespondError(404, "no such endpoint: " + std::string(request.target().substr(0, 256)), "not_found");
    }
    key_ = nullptr;
    if (context_->api_keys && !IsOpen(route->id)) {
      key_ = context_->api_keys->Find(BearerToken(View(request[http::field::authorization])));
      if (!key_) {
        context_->gate->IfOpen([&] { context_->metrics.CountAuthFailure("http"); });
        return RespondError(401, "Incorrect or missing API key: send Authorization: Bearer YOUR_KEY",
                            "invalid_api_key");
      }
    }
    if (request.method() != route->method) {
      allow_ = std::string(http::to_string(route->method));
      return RespondError(
          405,
          std::string(request.method_string()) + " is not allowed on " + std::string(route->path) + "; use " + allow_,
          "method_not_allowed");
    }
    switch (route->id) {
      case RouteId::kHealth: return Respond(200, R"({"status":"ok"})", "application/json");
      case RouteId::kReady: {
        bool ready = context_->service.Ready();
        return Respond(ready ? 200 : 503, openai::ReadyJson(ready, context_->service.Services()), "application/json");
      }
      case RouteId::kModels:
        return Respond(200, openai::ModelsJson(context_->service.Services(), context_->started_unix),
                       "application/json");
      case RouteId::kMetrics:
        return Respond(200, context_->metrics.Serialize(), "text/plain; version=0.0.4; charset=utf-8");
      default: return HandleQuery(ApiOf(route->id));
    }
  }

  // Whether the route answers without an API key (http.open_endpoints).
  bool IsOpen(RouteId id) const {
    const config::HttpConfig& config = context_->config;
    return (id == RouteId::kHealth && config.open_healthz) || (id == RouteId::kReady && config.open_readyz) ||
           (id == RouteId::kMetrics && config.open_metrics);
  }

  void HandleQuery(openai::Api api) {
    const auto& request = parser_->get();
    if (key_) {
      if (const int wait = context_->api_keys->Admit(*key_)) {
        return Respond(
            429, openai::ErrorJson(429, "API key '" + key_->name + "' is over its rate limit", "rate_limit_exceeded"),
            "application/json", wait);
      }
    }
    if (!IsJsonContentType(View(request[http::field::content_type]))) {
      return RespondError(415,
                          "Content-Type must be application/json, got \"" +
                              std::string(request[http::field::content_type].substr(0, 128)) + "\"",
                          "unsupported_media_type");
    }
    std::optional<openai::ParsedRequest> parsed;
    try {
      parsed.emplace(openai::ParseRequest(api, request.body()));
    } catch (const openai::ApiError& error) {
      return RespondError(error.status(), error.what(), error.code(), error.param());
    }
    api_ = api;
    ids_ = openai::NewResponseIds(api, parsed->model);
    if (parsed->stream)
      encoder_.emplace(api, ids_, parsed->include_usage);
    else
      encoder_.reset();
    stream_started_ = false;
    Submit(std::move(parsed->query));
  }

  void Submit(wire::QueryT query) {
    // Hold the session alive while the query runs: the pending wait owns it,
    // and the I/O context's teardown destroys it if the server stops first.
    waiting_.expires_at(Clock::time_point::max());
    waiting_.async_wait([self = shared_from_this()](beast::error_code) {});
    std::weak_ptr<Session> weak = shared_from_this();
    std::shared_ptr<CallbackGate> gate = context_->gate;
    router::QueryCallbacks callbacks;
    // dispatch: with http.threads 0 the callbacks come on this session's own
    // thread and run at once, saving a queued handler per answer; from
    // another thread they are queued, in the order they come.
    callbacks.on_partial = [weak, gate](std::string_view text) {
      gate->IfOpen([&] {
        if (auto self = weak.lock()) {
          net::dispatch(self->executor_, [self, text = std::string(text)] { self->OnPartial(text); });
        }
      });
    };
    callbacks.on_result = [weak, gate](wire::QueryResultT result) {
      gate->IfOpen([&] {
        if (auto self = weak.lock()) {
          net::dispatch(self->executor_,
                        [self, result = std::move(result)]() mutable { self->OnResult(std::move(result)); });
        }
      });
    };
    try {
      context_->service.Submit(std::move(query), std::move(callbacks));
    } catch (const std::exception& e) {
      waiting_.cancel();
      RespondError(500, std::string("the query could not be submitted: ") + e.what(), "internal");
    }
  }

  // --- answers -------------------------------------------------------------
  void OnPartial(const std::string& text) {
    if (closed_ || !encoder_) return;
    std::vector<std::string> events = encoder_->Partial(text);
    if (events.empty()) return;
    StartStream();
    for (std::string& event : events) QueueEvent(event);
  }

  void OnResult(wire::QueryResultT result) {
    waiting_.cancel();
    if (key_) context_->api_keys->Charge(*key_, int64_t{result.prompt_tokens} + result.completion_tokens);
    if (closed_) return;
    const bool ok = result.status == wire::StatusCode::OK;
    if (!stream_started_) {
      if (!ok) {
        return RespondFailure(result);
      }
      if (!encoder_) return Respond(200, openai::ResultJson(api_, ids_, result), "application/json");
      StartStream();
    }
    outcome_ = messages::HttpStatus(result.status);
    if (ok) {
      for (std::string& event : encoder_->Finish(result)) QueueEvent(event);
    } else {
      QueueEvent(encoder_->Error(result));
    }
    QueueEvent("[DONE]");
    Queue({Outgoing::kLast, {}});
  }

  void Respond(int status, std::string body, const char* content_type, int retry_after = 0) {
    HeadFields fields;
    fields.status = status;
    fields.version = version_;
    fields.keep_alive = keep_alive_;
    fields.content_type = content_type;
    fields.content_length = body.size();
    fields.retry_after = retry_after;
    if (status == 405) fields.allow = allow_;
    auto answer = std::make_shared<std::pair<std::string, std::string>>(CompleteResponseHead(fields), std::move(body));
    const std::array<net::const_buffer, 2> buffers = {net::buffer(answer->first), net::buffer(answer->second)};
    stream_.expires_after(kIoTimeout);
    net::async_write(stream_, buffers, [self = shared_from_this(), answer, status](beast::error_code ec, size_t) {
      self->RequestDone(ec ? 499 : status);
      if (ec) return self->Close();
      self->NextRequest();
    });
  }

  void RespondError(int status, std::string_view message, std::string_view code, std::string_view param = {}) {
    Respond(status, openai::ErrorJson(status, message, code, param), "application/json");
  }
  void RespondFailure(const wire::QueryResultT& failed) {
    Respond(messages::HttpStatus(failed.status), openai::ErrorJson(failed), "application/json",
            openai::RetryAfterSeconds(failed));
  }

  // --- streaming -----------------------------------------------------------
  void StartStream() {
    if (stream_started_) return;
    stream_started_ = true;
    outcome_ = 200;
    Queue({Outgoing::kHead, {}});
  }

  void QueueEvent(std::string_view payload) {
    std::string event = "data: ";
    event.append(payload).append("\n\n");
    Queue({Outgoing::kChunk, std::move(event)});
  }

  void Queue(Outgoing item) {
    outbox_.push_back(std::move(item));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    if (outbox_.empty()) return;
    writing_ = true;
    stream_.expires_after(kIoTimeout);
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->OnChunkWritten(ec); };
    Outgoing& item = outbox_.front();
    switch (item.kind) {
      case Outgoing::kHead:
        head_.emplace(http::status::ok, version_);
        head_->set(http::field::server, "thalamus");
        head_->set(http::field::content_type, "text/event-stream");
        head_->set(http::field::cache_control, "no-cache");
        head_->set("X-Accel-Buffering", "no");  // ask proxies not to buffer the stream
        // HTTP/1.0 has no chunked encoding: there the stream ends with the
        // connection.
        chunked_ = version_ >= 11;
        if (!chunked_) keep_alive_ = false;
        head_->keep_alive(keep_alive_);
        head_->chunked(chunked_);
        head_serializer_.emplace(*head_);
        return http::async_write_header(stream_, *head_serializer_, done);
      case Outgoing::kChunk:
        if (!chunked_) return net::async_write(stream_, net::buffer(item.data), done);
        return net::async_write(stream_, http::make_chunk(net::buffer(item.data)), done);
      case Outgoing::kLast:
        if (!chunked_) return net::async_write(stream_, net::const_buffer(), done);
        return net::async_write(stream_, http::make_chunk_last(), done);
    }
  }

  void OnChunkWritten(beast::error_code ec) {
    writing_ = false;
    if (ec) {
      // The client went away mid-stream: stop; the query's late callbacks
      // find no session.
      outbox_.clear();
      waiting_.cancel();
      RequestDone(499);
      return Close();
    }
    const bool last = outbox_.front().kind == Outgoing::kLast;
    outbox_.pop_front();
    if (!last) return WriteNext();
    head_serializer_.reset();
    head_.reset();
    RequestDone(outcome_);
    NextRequest();
  }

  // --- connection ----------------------------------------------------------
  void RequestDone(int status) {
    if (route_label_.empty()) return;
    double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    // Through the gate: with http.threads 0 a closed connection's last
    // handlers may run after the server (and the Metrics it borrowed) is gone.
    context_->gate->IfOpen([&] {
      context_->metrics.ObserveHttp(route_label_, status, seconds);
      if (key_) context_->metrics.ObserveApiKey(key_->name, status);
    });
    route_label_.clear();
  }

  void NextRequest() {
    if (keep_alive_) return ReadHeader();
    LingeringClose();
  }

  // Half-close, then read and discard what the client still sends (an
  // oversized body, say) until it closes too, so the answer is not reset.
  void LingeringClose() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    Drain();
  }

  void Drain() {
    stream_.expires_after(kLingerTimeout);
    stream_.async_read_some(net::buffer(drain_buffer_), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kLingerBytes) return self->Close();
      self->Drain();
    });
  }

  void Close() {
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  const net::io_context::executor_type executor_;
  beast::basic_stream<tcp, net::io_context::executor_type> stream_;
  std::shared_ptr<const ServerContext> context_;
  net::basic_waitable_timer<Clock, net::wait_traits<Clock>, net::io_context::executor_type> waiting_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;

  // The request being answered.
  std::string route_label_;                              // the metrics label; empty once counted
  std::chrono::steady_clock::time_point read_deadline_;  // of the request being read
  const security::ApiKey* key_ = nullptr;                // the request's API key, when keys are on
  Clock::time_point started_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  std::string allow_;
  openai::Api api_ = openai::Api::kChat;
  openai::ResponseIds ids_;

  // A streamed answer.
  std::optional<openai::StreamEncoder> encoder_;
  bool stream_started_ = false;
  int outcome_ = 200;
  std::deque<Outgoing> outbox_;
  bool writing_ = false;
  bool chunked_ = true;
  std::optional<http::response<http::empty_body>> head_;
  std::optional<http::response_serializer<http::empty_body>> head_serializer_;

  bool closed_ = false;
  char drain_buffer_[4096];
  size_t drained_ = 0;
};

}  // namespace

void ConnectionSet::Add(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mu_);
  live_.emplace(connection.get(), connection);
}

void ConnectionSet::Remove(const Connection* connection) {
  std::lock_guard lock(mu_);
  live_.erase(connection);
}

size_t ConnectionSet::size() {
  std::lock_guard lock(mu_);
  return live_.size();
}

void ConnectionSet::ShutdownAll() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(mu_);
    for (auto& [key, weak] : live_) {
      if (auto connection = weak.lock()) open.push_back(std::move(connection));
    }
  }
  // Outside the lock: a connection that goes away removes itself.
  for (auto& connection : open) connection->Shutdown();
}

void StartSession(SessionSocket socket, std::shared_ptr<const ServerContext> context) {
  std::make_shared<Session>(std::move(socket), std::move(context))->Run();
}

}  // namespace thalamus::frontends::http_internal
