#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "apps/router_main.h"
#include "apps/run_with_config.h"
#include "apps/version.h"
#include "cli/parse_options.h"
#include "frontends/http_server.h"
#include "frontends/zmq_frontend.h"
#include "gate/gate_model.h"
#include "router/broker.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "router/query_pipeline.h"
#include "router/supervisor.h"
#include "security/curve_keys.h"
#include "security/zap_handler.h"

namespace thalamus::apps {
namespace {

using frontends::HttpServer;
using frontends::ZmqFrontend;
using router::Broker;
using router::EventLoop;
using router::Metrics;
using router::QueryPipeline;
using router::Supervisor;

// Writes what a test or an operator needs to reach this router: the bound
// ports, which may have been chosen by the kernel. Atomic via rename.
void WriteReadyFile(const std::string& path, int http_port, const std::string& backend, const std::string& frontend) {
  nlohmann::json ready = {
      {"pid", static_cast<int>(getpid())}, {"http_port", http_port}, {"backend", backend}, {"frontend", frontend}};
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    out << ready.dump() << "\n";
  }
  std::rename(temporary.c_str(), path.c_str());
}

// SIGINT/SIGTERM may land on any thread (libraries start their own, some
// before main), so the handler only writes the signal number to a pipe that
// the main thread waits on.
int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int signal_number) {
  const char byte = static_cast<char>(signal_number);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

int WaitForStopSignal() {
  char byte = 0;
  while (read(g_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

// True when another stop signal came within `timeout`.
bool StopSignalWithin(std::chrono::milliseconds timeout) {
  pollfd wait = {g_signal_pipe[0], POLLIN, 0};
  return poll(&wait, 1, static_cast<int>(timeout.count())) > 0;
}

// SIGTERM: /readyz turns 503 and new queries are answered UNAVAILABLE (so a
// load balancer moves on), while the queries in flight finish, for up to
// broker.drain_grace_ms; a second signal ends the wait.
void Drain(QueryPipeline& pipeline, const config::Config& config) {
  pipeline.BeginDrain();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(config.broker.drain_grace_ms);
  std::fprintf(stderr, "thalamus-router: draining %lld quer(ies) in flight, up to %d ms\n",
               static_cast<long long>(pipeline.in_flight()), config.broker.drain_grace_ms);
  while (pipeline.in_flight() > 0 && std::chrono::steady_clock::now() < until) {
    if (StopSignalWithin(std::chrono::milliseconds(20))) {
      std::fprintf(stderr, "thalamus-router: second signal, not waiting for the rest\n");
      return;
    }
  }
  if (pipeline.in_flight() > 0) {
    std::fprintf(stderr, "thalamus-router: drain grace over with %lld quer(ies) in flight\n",
                 static_cast<long long>(pipeline.in_flight()));
    return;
  }
  // The last results were handed to the front ends, whose writes may still
  // be queued on their sockets: let them go out before the connections close.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void InstallStopSignalHandlers() {
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// The ZAP handler for the CURVE endpoints of the config, or none.
std::unique_ptr<security::ZapHandler> StartZapHandler(const config::Config& config, EventLoop& loop, Metrics& metrics) {
  std::map<std::string, std::string> domains;
  if (config.broker.curve.enabled) domains["backend"] = config.broker.curve.authorized_keys;
  if (config.broker.frontend_curve.enabled) domains["frontend"] = config.broker.frontend_curve.authorized_keys;
  if (domains.empty()) return nullptr;
  return std::make_unique<security::ZapHandler>(
      loop.context(), domains, [&metrics](const std::string& domain) { metrics.CountAuthFailure(domain); });
}

// The ZeroMQ front end of config.broker, bound now.
std::unique_ptr<ZmqFrontend> StartZmqFrontend(const config::Config& config, EventLoop& loop, QueryPipeline& pipeline,
                                              Metrics& metrics) {
  std::optional<security::KeyPair> keys;
  if (config.broker.frontend_curve.enabled) keys = security::ReadKeyPair(config.broker.frontend_curve.router_key);
  frontends::ZmqFrontendOptions options;
  options.endpoint = config.broker.frontend;
  options.max_message_bytes = config.broker.max_message_bytes;
  options.max_in_flight_per_client = config.broker.frontend_max_in_flight;
  options.retry_after_ms = static_cast<uint32_t>(config.broker.retry_after_ms);
  options.send_high_water_mark = config.broker.frontend_send_hwm;
  options.curve = keys ? &*keys : nullptr;
  return std::make_unique<ZmqFrontend>(options, loop, pipeline, metrics);
}

int Serve(const config::Config& config, const std::string& config_path, const std::string& ready_file, bool supervise) {
  InstallStopSignalHandlers();
  gate::UseOneTorchThread();

  Metrics metrics;
  EventLoop loop;
  // Before the sockets bind: libzmq asks the handler about every CURVE handshake.
  std::unique_ptr<security::ZapHandler> zap = StartZapHandler(config, loop, metrics);
  Broker broker(config, loop, metrics);
  QueryPipeline pipeline(config, loop, broker, metrics);
  std::unique_ptr<ZmqFrontend> frontend;
  if (!config.broker.frontend.empty()) frontend = StartZmqFrontend(config, loop, pipeline, metrics);
  HttpServer http(config.http, pipeline, metrics, &loop);
  // Stops, in this order, on every way out (the front ends and the broker
  // must not be destroyed while the loop still watches their sockets).
  struct StopInOrder {
    HttpServer& http;
    EventLoop& loop;
    ~StopInOrder() {
      http.Stop();
      loop.Stop();
    }
  } stop_in_order{http, loop};
  loop.Start();
  http.Start();
  std::unique_ptr<Supervisor> supervisor;
  if (supervise && config.supervisor.enabled) {
    supervisor = std::make_unique<Supervisor>(config, config_path, broker.endpoint(),
                                              [&metrics](const std::string& expert) { metrics.CountRestart(expert); });
    supervisor->Start();
  }
  const std::string frontend_endpoint = frontend ? frontend->endpoint() : "";
  std::fprintf(stderr, "thalamus-router: %s; http://%s:%d, front end %s, backend %s\n", config.file.c_str(),
               config.http.host.c_str(), http.port(), frontend_endpoint.c_str(), broker.endpoint().c_str());
  if (!ready_file.empty()) WriteReadyFile(ready_file, http.port(), broker.endpoint(), frontend_endpoint);

  const int signal_number = WaitForStopSignal();
  std::fprintf(stderr, "thalamus-router: signal %d, shutting down\n", signal_number);
  Drain(pipeline, config);
  if (supervisor) supervisor->Stop();
  return 0;
}

}  // namespace

int RouterMain(int argc, char** argv) {
  if (PrintVersionIfAsked(argc, argv, "thalamus-router")) return 0;
  namespace po = boost::program_options;
  po::options_description options = ConfigOptions("thalamus-router: the Thalamus router");
  options.add_options()("ready-file", po::value<std::string>(), "write the bound endpoints here as JSON once serving")(
      "no-supervise", "do not start the config's local experts");
  po::variables_map vars;
  if (auto exit_code = cli::ParseOptions(argc, argv, "thalamus-router", options, vars)) return *exit_code;
  return RunWithConfig("thalamus-router", vars, [&](const config::Config& config, const std::string& path) {
    return Serve(config, path, vars.count("ready-file") ? vars["ready-file"].as<std::string>() : "",
                 !vars.count("no-supervise"));
  });
}

}  // namespace thalamus::apps
