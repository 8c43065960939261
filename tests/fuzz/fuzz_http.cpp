// Fuzz target: the router's HTTP front end as a client meets it: the bytes
// go over a real loopback connection to an HttpServer (frontends/: Beast's
// request parser with the server's limits, the routes, API keys and rate
// limits, the OpenAI request parsers and answer encoders, streaming) in front
// of the tests' scripted QueryService, which answers every query on its own
// thread as the router does. Whatever the bytes, the server must not crash,
// leak or hang (each connection ends within libFuzzer's -timeout), and what
// it writes back is HTTP.
//
// Keys the corpus and http.dict use: "thk-fuzz" (no limits)
// and "thk-tight" (1 request and 10 tokens per minute, to reach 429).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "frontends/http_server.h"
#include "router/metrics.h"
#include "security/api_keys.h"
#include "tests/frontends/scripted_query_service.h"

namespace {

using thalamus::frontends::HttpServer;
using thalamus::frontends::testing::ScriptedQueryService;

struct Harness {
  ScriptedQueryService service;
  thalamus::router::Metrics metrics;
  std::unique_ptr<HttpServer> server;
  int port = 0;

  Harness() {
    const auto keys = std::filesystem::temp_directory_path() / ("thalamus-fuzz-http-" + std::to_string(getpid()));
    {
      std::ofstream out(keys);
      out << thalamus::security::ApiKeyLine("fuzz", "thk-fuzz", 0, 0) << "\n"
          << thalamus::security::ApiKeyLine("tight", "thk-tight", 1, 10) << "\n";
    }
    thalamus::config::HttpConfig config;
    config.port = 0;
    config.threads = 1;
    config.max_body_bytes = 64 << 10;  // small, so that the fuzzer reaches 413
    config.read_timeout_ms = 2000;     // a request cut short ends with the connection's write side
    config.api_keys = keys.string();
    config.open_metrics = false;
    server = std::make_unique<HttpServer>(config, service, metrics);
    server->Start();
    port = server->port();
    std::filesystem::remove(keys);
  }
};

Harness* harness = nullptr;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{8, 0};  // below libFuzzer's -timeout=10: a hang is reported as such
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness = new Harness();  // lives as long as the process: the server thread must outlive every input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = Connect(harness->port);
  if (fd < 0) {
    std::perror("fuzz_http: connect");
    return 0;
  }
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server answered (413, 431, 400) and closed: read what it wrote
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string answer;
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) {
      answer.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::fprintf(stderr, "fuzz_http: the server neither answered nor closed within 8 s\n");
      std::abort();
    }
    break;  // closed (or reset after an early answer)
  }
  close(fd);
  if (!answer.empty() && answer.rfind("HTTP/1.1 ", 0) != 0 && answer.rfind("HTTP/1.0 ", 0) != 0) std::abort();
  return 0;
}
