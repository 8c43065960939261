// bench_router_overhead: what the router costs per request, against a plain
// ZeroMQ proxy measured in the same run.
//
// Modes, each a closed loop of N clients (bench/router/load.h):
//   proxy     client DEALER -> zmq::proxy (ROUTER/DEALER) -> REP echo worker -> back
//   zmq       client DEALER -> thalamus-router ZeroMQ front end -> echo expert -> back
//   http      keep-alive POST /v1/chat/completions -> thalamus-router -> echo expert -> back
// For each concurrency the three run back to back, --rounds times over, and
// each row pools its rounds, so that whatever else the machine is doing
// touches all three alike. Prints one row per mode and concurrency; exits 1
// when any request failed or a server did not start.
//
// A plain program rather than Google Benchmark: every row is a whole
// closed-loop run compared with the baseline row of the same concurrency,
// which Google Benchmark's per-iteration model does not express.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>

#include "bench/router/load.h"
#include "bench/router/processes.h"

namespace thalamus::bench {
namespace {

// One mode at one concurrency, pooled over every round.
struct Row {
  std::string mode;
  int concurrency;
  LoadResult result;
  double server_cpu_seconds = 0;  // the server processes, warm-up and drain included
  double client_cpu_seconds = 0;  // this process, the load generator

  double PerAnswerUs(double seconds) const {
    return result.answered > 0 ? seconds * 1e6 / static_cast<double>(result.answered) : 0;
  }
  // Pools one more round: latencies, counts and time add up.
  void Add(LoadResult round, double server_cpu, double client_cpu) {
    result.completed += round.completed;
    result.answered += round.answered;
    if (result.failures == 0) result.first_error = round.first_error;
    result.failures += round.failures;
    result.window_seconds += round.window_seconds;
    result.latencies_us.insert(result.latencies_us.end(), round.latencies_us.begin(), round.latencies_us.end());
    std::sort(result.latencies_us.begin(), result.latencies_us.end());
    server_cpu_seconds += server_cpu;
    client_cpu_seconds += client_cpu;
  }
};

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

const std::vector<std::string> kModes = {"proxy", "zmq", "http"};

std::vector<std::string> ParseModes(const std::string& list) {
  std::vector<std::string> modes;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (std::find(kModes.begin(), kModes.end(), item) == kModes.end()) {
      throw std::invalid_argument("--modes: '" + item + "' is not one of proxy, zmq, http");
    }
    modes.push_back(item);
  }
  if (modes.empty()) throw std::invalid_argument("--modes: empty list");
  return modes;
}

std::vector<int> ParseConcurrency(const std::string& list) {
  std::vector<int> values;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value < 1 || value > 4096) {
      throw std::invalid_argument("--concurrency: '" + item + "' is not an integer in [1, 4096]");
    }
    values.push_back(value);
  }
  if (values.empty()) throw std::invalid_argument("--concurrency: empty list");
  return values;
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// "1.23x", or "-" without a baseline row to compare with.
std::string Ratio(double value, double baseline) {
  if (!(baseline > 0)) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2fx", value / baseline);
  return text;
}

void PrintTable(const std::vector<Row>& rows) {
  std::printf("\n| mode  | conc | req/s   | p50 us  | p99 us  | p50 vs proxy | req/s vs proxy | server CPU us/req | client CPU us/req | failures |\n");
  std::printf("|-------|-----:|--------:|--------:|--------:|-------------:|---------------:|------------------:|------------------:|---------:|\n");
  for (const Row& row : rows) {
    const Row* proxy = nullptr;
    for (const Row& other : rows) {
      if (other.mode == "proxy" && other.concurrency == row.concurrency) proxy = &other;
    }
    const double p50 = row.result.PercentileUs(0.50);
    const double proxy_p50 = proxy ? proxy->result.PercentileUs(0.50) : 0;
    const double proxy_rps = proxy ? proxy->result.RequestsPerSecond() : 0;
    std::printf("| %-5s | %4d | %7.0f | %7.1f | %7.1f | %12s | %14s | %17.1f | %17.1f | %8llu |\n", row.mode.c_str(),
                row.concurrency, row.result.RequestsPerSecond(), p50, row.result.PercentileUs(0.99),
                Ratio(p50, proxy_p50).c_str(), Ratio(row.result.RequestsPerSecond(), proxy_rps).c_str(),
                row.PerAnswerUs(row.server_cpu_seconds), row.PerAnswerUs(row.client_cpu_seconds),
                static_cast<unsigned long long>(row.result.failures));
  }
}

int Run(const LoadOptions& base, const std::vector<int>& concurrencies, const std::vector<std::string>& modes,
        int rounds, const RouterOptions& router_options, bool with_trace) {
  // First, while this process has no thread and no ZeroMQ context yet.
  ProxyBaseline proxy = StartProxyBaseline(/*workers=*/router_options.replicas);
  RouterUnderTest router(router_options);
  std::printf("machine: %u cores, %s; load average %s\n", std::thread::hardware_concurrency(), CpuModel().c_str(),
              LoadAverage().c_str());
  std::printf("proxy: %s, %d REP workers; thalamus-router: %s", proxy.frontend.c_str(), router_options.replicas,
              router_options.binary.c_str());
  std::printf(" (front end %s, http port %d)\nconfig:\n%s", router.frontend().c_str(), router.http_port(),
              router.config_yaml().c_str());
  std::printf("%d round(s) of a %.1f s window after %.1f s warm-up per mode, modes interleaved, pooled; "
              "%zu-byte prompts, zmq with_trace=%s\n",
              rounds, base.seconds, base.warmup_seconds, base.payload_bytes, with_trace ? "true" : "false");
  std::fflush(stdout);

  std::vector<Row> rows;
  for (int concurrency : concurrencies) {
    LoadOptions options = base;
    options.concurrency = concurrency;
    const size_t first = rows.size();
    for (const std::string& mode : modes) rows.push_back(Row{mode, concurrency, {}});
    // Rounds interleave the modes, so a burst of other work on the machine
    // lands on all of them rather than on one.
    for (int round = 0; round < rounds; ++round) {
      for (size_t m = 0; m < modes.size(); ++m) {
        const std::string& mode = modes[m];
        const pid_t server = mode == "proxy" ? proxy.process.pid() : router.pid();
        const double server_before = TreeCpuSeconds(server);
        const double client_before = OwnCpuSeconds();
        LoadResult result;
        if (mode == "proxy") result = RunZmqLoad(proxy.frontend, ZmqProtocol::kRawEcho, false, options);
        if (mode == "zmq") result = RunZmqLoad(router.frontend(), ZmqProtocol::kThalamusQuery, with_trace, options);
        if (mode == "http") result = RunHttpLoad(router.http_port(), options);
        std::fprintf(stderr, "round %d %s c=%d: %.0f req/s, p50 %.1f us, p99 %.1f us, %llu failures\n", round + 1,
                     mode.c_str(), concurrency, result.RequestsPerSecond(), result.PercentileUs(0.5),
                     result.PercentileUs(0.99), static_cast<unsigned long long>(result.failures));
        rows[first + m].Add(std::move(result), TreeCpuSeconds(server) - server_before, OwnCpuSeconds() - client_before);
      }
    }
  }
  PrintTable(rows);
  int status = 0;
  for (const Row& row : rows) {
    if (row.result.failures == 0 && row.result.completed > 0) continue;
    std::fprintf(stderr, "FAILED: %s at concurrency %d: %llu failures, %llu completed; first error: %s\n",
                 row.mode.c_str(), row.concurrency, static_cast<unsigned long long>(row.result.failures),
                 static_cast<unsigned long long>(row.result.completed), row.result.first_error.c_str());
    status = 1;
  }
  if (status != 0) std::fprintf(stderr, "router log:\n%s\n", router.Log().c_str());
  return status;
}

}  // namespace
}  // namespace thalamus::bench

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using namespace thalamus::bench;
  LoadOptions load;
  RouterOptions router;
  std::string concurrency_list;
  std::string mode_list;
  int rounds = 1;
  bool with_trace = true;
  po::options_description options(
      "bench_router_overhead: thalamus-router (ZeroMQ and HTTP front ends, echo experts) against a plain ZeroMQ "
      "proxy with REP echo workers, closed loop");
  options.add_options()("help,h", "show this help")
      ("seconds", po::value(&load.seconds)->default_value(5.0), "measured window per mode and concurrency")
      ("warmup", po::value(&load.warmup_seconds)->default_value(1.0), "unmeasured seconds before each window")
      ("concurrency", po::value(&concurrency_list)->default_value("1,8,32"), "comma-separated client counts")
      ("modes", po::value(&mode_list)->default_value("proxy,zmq,http"), "which of proxy, zmq, http to run")
      ("rounds", po::value(&rounds)->default_value(1), "repeat each mode this often, interleaved, and pool the samples")
      ("payload-bytes", po::value(&load.payload_bytes)->default_value(64), "prompt length in every mode")
      ("replicas", po::value(&router.replicas)->default_value(2), "echo experts (and proxy REP workers)")
      ("expert-concurrency", po::value(&router.concurrency)->default_value(2), "requests each echo expert works on at once")
      ("http-threads", po::value(&router.http_threads)->default_value(2), "the router's HTTP I/O threads (0: on its event loop thread)")
      ("zmq-with-trace", po::value(&with_trace)->default_value(true), "ask the ZeroMQ front end for the trace (the wire default)")
      ("router", po::value(&router.binary), "thalamus-router binary (default: beside this one)");
  std::vector<int> concurrencies;
  std::vector<std::string> modes;
  try {
    po::variables_map vars;
    po::store(po::parse_command_line(argc, argv, options), vars);
    po::notify(vars);
    if (vars.count("help")) {
      std::cout << options;
      return 0;
    }
    concurrencies = ParseConcurrency(concurrency_list);
    modes = ParseModes(mode_list);
    if (!(load.seconds > 0) || !(load.warmup_seconds >= 0)) throw std::invalid_argument("--seconds must be > 0, --warmup >= 0");
    if (rounds < 1) throw std::invalid_argument("--rounds must be >= 1");
    if (load.payload_bytes < kMinPayloadBytes || load.payload_bytes > (1 << 20)) {
      throw std::invalid_argument("--payload-bytes must be in [" + std::to_string(kMinPayloadBytes) + ", 1048576]");
    }
    if (router.replicas < 1 || router.concurrency < 1 || router.http_threads < 0) {
      throw std::invalid_argument("--replicas and --expert-concurrency must be >= 1, --http-threads >= 0");
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_router_overhead: " << e.what() << "\n" << options;
    return 2;
  }
  if (router.binary.empty()) router.binary = OwnDirectory() + "/thalamus-router";
  if (access(router.binary.c_str(), X_OK) != 0) {
    std::cerr << "bench_router_overhead: no executable " << router.binary << " (build thalamus-router, or pass --router)\n";
    return 2;
  }
  try {
    return Run(load, concurrencies, modes, rounds, router, with_trace);
  } catch (const std::exception& e) {
    std::cerr << "bench_router_overhead: " << e.what() << "\n";
    return 1;
  }
}
