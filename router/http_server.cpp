#include "router/http_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "router/http_session.h"

namespace thalamus::router {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class HttpServer::Impl {
 public:
  Impl(const config::HttpConfig& config, QueryService& service, Metrics& metrics)
      : context_(std::make_shared<http_internal::ServerContext>(
            http_internal::ServerContext{config, service, metrics})) {}

  ~Impl() { Stop(); }

  // One io_context per I/O thread, each session on one of them: a session's
  // handlers then run on one thread without a strand (no strand lock and
  // shared strand state per operation, which showed in perf under load).
  void Start() {
    if (!contexts_.empty()) throw std::logic_error("HttpServer::Start called twice");
    const config::HttpConfig& config = context_->config;
    if (config.threads < 1) throw std::invalid_argument("http.threads must be >= 1");
    context_->started_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    for (int i = 0; i < config.threads; ++i) {
      contexts_.push_back(std::make_unique<net::io_context>(1));
      work_.push_back(net::make_work_guard(*contexts_.back()));
    }
    acceptor_ = std::make_unique<tcp::acceptor>(*contexts_.front());
    retry_timer_ = std::make_unique<net::steady_timer>(*contexts_.front());
    Bind(config.host, config.port);
    Accept();
    for (auto& io : contexts_) {
      threads_.emplace_back([context = io.get()] { context->run(); });
    }
  }

  int port() const { return port_; }

  void Stop() {
    if (contexts_.empty() || stopped_) return;
    stopped_ = true;
    // From here on no QueryService callback reaches a session, so tearing
    // the sessions down below cannot race with one.
    context_->gate->Close();
    for (auto& io : contexts_) io->stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
    work_.clear();
    retry_timer_.reset();
    acceptor_.reset();
    // Destroying the contexts destroys the handlers that own the sessions,
    // which closes their sockets.
    contexts_.clear();
  }

 private:
  void Bind(const std::string& host, int port) {
    const std::string address = host + ":" + std::to_string(port);
    try {
      tcp::resolver resolver(*contexts_.front());
      auto endpoints = resolver.resolve(host, std::to_string(port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service);
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

  void Accept() {
    net::io_context& next = *contexts_[next_context_++ % contexts_.size()];
    acceptor_->async_accept(next, [this](boost::system::error_code ec, tcp::socket socket) {
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
      socket.set_option(tcp::no_delay(true), ignored);  // SSE chunks must not wait for Nagle
      http_internal::StartSession(std::move(socket), context_);
      Accept();
    });
  }

  std::shared_ptr<http_internal::ServerContext> context_;
  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::unique_ptr<net::steady_timer> retry_timer_;
  std::vector<std::thread> threads_;
  size_t next_context_ = 0;  // round robin; only the acceptor's thread touches it
  int port_ = 0;
  bool stopped_ = false;
};

HttpServer::HttpServer(const config::HttpConfig& config, QueryService& service, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, service, metrics)) {}

HttpServer::~HttpServer() = default;

void HttpServer::Start() { impl_->Start(); }

int HttpServer::port() const { return impl_->port(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace thalamus::router
