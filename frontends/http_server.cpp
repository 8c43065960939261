#include "frontends/http_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "frontends/http_session.h"
#include "frontends/openai_response.h"

namespace thalamus::frontends {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class HttpServer::Impl {
 public:
  Impl(const config::HttpConfig& config, router::QueryService& service, router::Metrics& metrics,
       router::EventLoop* loop)
      : context_(std::make_shared<http_internal::ServerContext>(http_internal::ServerContext{
            config, service, metrics, /*started_unix=*/0, std::make_shared<http_internal::CallbackGate>(),
            std::make_shared<http_internal::ConnectionSet>(),
            config.api_keys.empty() ? nullptr : security::ApiKeys::Load(config.api_keys)})),
        loop_(loop) {}

  ~Impl() { Stop(); }

  // threads >= 1: one io_context per I/O thread, each session on one of them:
  // a session's handlers then run on one thread without a strand (no strand
  // lock and shared strand state per operation, which showed in perf under
  // load). threads == 0: every session on the event loop's io_context.
  void Start() {
    if (started_) throw std::logic_error("HttpServer::Start called twice");
    started_ = true;
    const config::HttpConfig& config = context_->config;
    if (config.threads < 0) throw std::invalid_argument("http.threads must be >= 0");
    if (config.threads == 0 && !loop_) throw std::invalid_argument("http.threads: 0 needs the router's event loop");
    context_->started_unix =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (config.threads == 0) {
      session_contexts_.push_back(&loop_->io_context());
      loop_->Call([&] { Listen(config); });
      return;
    }
    for (int i = 0; i < config.threads; ++i) {
      owned_contexts_.push_back(std::make_unique<net::io_context>(1));
      work_.push_back(net::make_work_guard(*owned_contexts_.back()));
      session_contexts_.push_back(owned_contexts_.back().get());
    }
    Listen(config);
    for (auto& io : owned_contexts_) {
      threads_.emplace_back([context = io.get()] { context->run(); });
    }
  }

  int port() const { return port_; }

  void Stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    // From here on no QueryService callback reaches a session, so tearing
    // the sessions down below cannot race with one.
    context_->gate->Close();
    if (owned_contexts_.empty()) {
      if (session_contexts_.empty()) return;  // Start() failed before listening
      // The loop keeps running: close the listener and every connection on
      // it; their aborted handlers then let the sessions go.
      loop_->Call([this] {
        acceptor_.reset();
        retry_timer_.reset();
        context_->connections->ShutdownAll();
      });
      return;
    }
    for (auto& io : owned_contexts_) io->stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
    work_.clear();
    retry_timer_.reset();
    acceptor_.reset();
    // Destroying the contexts destroys the handlers that own the sessions,
    // which closes their sockets.
    owned_contexts_.clear();
  }

 private:
  void Listen(const config::HttpConfig& config) {
    acceptor_ = std::make_unique<tcp::acceptor>(*session_contexts_.front());
    retry_timer_ = std::make_unique<net::steady_timer>(*session_contexts_.front());
    Bind(config.host, config.port);
    Accept();
  }

  void Bind(const std::string& host, int port) {
    const std::string address = host + ":" + std::to_string(port);
    try {
      tcp::resolver resolver(*session_contexts_.front());
      auto endpoints =
          resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service);
      if (endpoints.empty()) throw std::runtime_error("no address");
      tcp::endpoint endpoint = endpoints.begin()->endpoint();
      acceptor_->open(endpoint.protocol());
      acceptor_->set_option(net::socket_base::reuse_address(true));
      acceptor_->bind(endpoint);
      acceptor_->listen(net::socket_base::max_listen_connections);
      port_ = acceptor_->local_endpoint().port();
    } catch (const std::exception& e) {
      throw std::runtime_error("http: cannot listen on " + address + ": " + e.what());
    }
  }

  // Over http.max_connections: a 503 written as far as the socket takes it
  // without waiting, then closed; nothing of the client is read.
  void RefuseConnection(http_internal::SessionSocket& socket) {
    static const std::string kAnswer = [] {
      const std::string body = openai::ErrorJson(503, "too many connections; retry later", "too_many_connections");
      return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
             "Connection: close\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(net::buffer(kAnswer), ignored);
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
    context_->gate->IfOpen([&] { context_->metrics.ObserveHttp("connection_limit", 503, 0.0); });
  }

  void Accept() {
    net::io_context& next = *session_contexts_[next_context_++ % session_contexts_.size()];
    acceptor_->async_accept(next, [this](boost::system::error_code ec, http_internal::SessionSocket socket) {
      if (ec == net::error::operation_aborted) return;
      if (ec) {
        // Out of file descriptors and the like: back off instead of spinning.
        retry_timer_->expires_after(std::chrono::milliseconds(50));
        retry_timer_->async_wait([this](boost::system::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      boost::system::error_code ignored;
      if (context_->connections->size() >= static_cast<size_t>(context_->config.max_connections)) {
        RefuseConnection(socket);
        return Accept();
      }
      socket.set_option(tcp::no_delay(true), ignored);  // SSE chunks must not wait for Nagle
      http_internal::StartSession(std::move(socket), context_);
      Accept();
    });
  }

  std::shared_ptr<http_internal::ServerContext> context_;
  router::EventLoop* const loop_;
  std::vector<std::unique_ptr<net::io_context>> owned_contexts_;  // threads >= 1
  std::vector<net::io_context*> session_contexts_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<net::steady_timer> retry_timer_;
  std::vector<std::thread> threads_;
  size_t next_context_ = 0;  // round robin; only the acceptor's thread touches it
  int port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

HttpServer::HttpServer(const config::HttpConfig& config, router::QueryService& service, router::Metrics& metrics,
                       router::EventLoop* loop)
    : impl_(std::make_unique<Impl>(config, service, metrics, loop)) {}

HttpServer::~HttpServer() = default;

void HttpServer::Start() { impl_->Start(); }

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace thalamus::frontends
