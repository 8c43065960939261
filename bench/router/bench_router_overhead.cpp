// bench_router_overhead: what the router costs per request, against a plain
// ZeroMQ proxy measured in the same run.
//
// Modes:
//   proxy     client DEALER -> zmq::proxy (ROUTER/DEALER) -> REP echo worker -> back
//             (the workers one process each by default, as the experts are)
//   zmq       client DEALER -> thalamus-router ZeroMQ front end -> echo expert -> back
//   http      keep-alive POST /v1/chat/completions -> thalamus-router -> echo expert -> back
// The echo experts get the pipeline depth the proxy's workers have: a REP
// worker holds whatever its DEALER sends it, so by default each expert may
// hold every client's request (--expert-queue-limit); with a shallow depth the
// router queues the rest itself and every round trip to an expert carries
// fewer requests, which at saturation is a different comparison.
// Each mode runs at every load point (bench/router/load.h):
// - closed loop, one per --concurrency N: N clients, each asking again as
//   soon as its answer is in. Measures capacity; on a small machine the
//   latency at N >= 8 mostly shows the CPUs saturated.
// - open loop, one per --rates R: R requests per second over
//   --open-connections connections, latency from each request's due time
//   (wrk2-style), so it shows the latency at a load the server can carry and
//   flags the rates it could not keep up with.
// At each point the modes run back to back, --rounds times over, and each row
// pools its rounds, so that whatever else the machine is doing touches all of
// them alike. Server cost per answer comes twice: CPU time (from /proc; it
// moves with the machine's other load) and retired instructions (performance
// counters, bench/router/instructions.h; steady, so the column to compare
// changes by). Prints a table per loop shape, one row per mode and point; exits
// 1 when any request failed or a server did not start (not keeping up with an
// offered rate is a result, not a failure).
//
// A plain program rather than Google Benchmark: every row is a whole run
// compared with the baseline row of the same load point, which Google
// Benchmark's per-iteration model does not express.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <boost/program_options.hpp>

#include "bench/router/instructions.h"
#include "bench/router/load.h"
#include "bench/router/processes.h"

namespace thalamus::bench {
namespace {

// One mode at one load point, pooled over every round.
struct Row {
  std::string mode;
  int concurrency;  // clients, or the open loop's connections
  double rate;      // open loop: offered requests per second; 0: closed loop
  LoadResult result;
  double server_cpu_seconds = 0;     // the server processes, warm-up and drain included
  double client_cpu_seconds = 0;     // this process, the load generator
  double server_instructions = 0;    // the server processes, like server_cpu_seconds
  bool instructions_counted = true;  // every round had performance counters

  bool SamePoint(const Row& other) const { return concurrency == other.concurrency && rate == other.rate; }
  std::string Point() const {
    char text[64];
    if (rate > 0) {
      std::snprintf(text, sizeof(text), "%.0f req/s offered", rate);
    } else {
      std::snprintf(text, sizeof(text), "concurrency %d", concurrency);
    }
    return text;
  }
  // The open loop's verdict: the server answered at least 95% of the offered rate.
  bool KeptUp() const { return result.AnswersPerSecond() >= 0.95 * rate; }
  double PerAnswerUs(double seconds) const {
    return result.answered > 0 ? seconds * 1e6 / static_cast<double>(result.answered) : 0;
  }
  // Pools one more round: latencies, counts and time add up.
  void Add(LoadResult round, double server_cpu, double client_cpu, std::optional<uint64_t> instructions) {
    result.completed += round.completed;
    result.window_answers += round.window_answers;
    result.answered += round.answered;
    if (result.failures == 0) result.first_error = round.first_error;
    result.failures += round.failures;
    result.window_seconds += round.window_seconds;
    result.latencies_us.insert(result.latencies_us.end(), round.latencies_us.begin(), round.latencies_us.end());
    std::sort(result.latencies_us.begin(), result.latencies_us.end());
    server_cpu_seconds += server_cpu;
    client_cpu_seconds += client_cpu;
    if (instructions) server_instructions += static_cast<double>(*instructions);
    instructions_counted = instructions_counted && instructions.has_value();
  }
  // Thousands of server instructions per answer, and their ratio to the
  // proxy's at the same point; "-" without counters.
  std::string InstructionsText(const Row* proxy) const {
    if (!instructions_counted || result.answered == 0) return "-";
    const double per_answer = server_instructions / static_cast<double>(result.answered) / 1000;
    char text[48];
    if (proxy && proxy != this && proxy->instructions_counted && proxy->result.answered > 0) {
      const double proxy_per_answer = proxy->server_instructions / static_cast<double>(proxy->result.answered) / 1000;
      std::snprintf(text, sizeof(text), "%.1f (%.2fx)", per_answer, per_answer / proxy_per_answer);
    } else {
      std::snprintf(text, sizeof(text), "%.1f", per_answer);
    }
    return text;
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

// A comma-separated list of numbers in [min, max] (whole ones if `whole`);
// the empty string is the empty list.
std::vector<double> ParseNumbers(const std::string& flag, const std::string& list, double min, double max, bool whole) {
  std::vector<double> values;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || !(value >= min && value <= max) || (whole && value != std::floor(value))) {
      char range[96];
      std::snprintf(range, sizeof(range), "%s in [%g, %g]", whole ? "an integer" : "a number", min, max);
      throw std::invalid_argument(flag + ": '" + item + "' is not " + range);
    }
    values.push_back(value);
  }
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
  if (!(value > 0) || !(baseline > 0)) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.2fx", value / baseline);
  return text;
}

// The baseline row at the same load point, or null.
const Row* ProxyRow(const std::vector<Row>& rows, const Row& row) {
  for (const Row& other : rows) {
    if (other.mode == "proxy" && other.SamePoint(row)) return &other;
  }
  return nullptr;
}

void PrintClosedTable(const std::vector<Row>& rows) {
  std::printf(
      "\n| mode  | conc | req/s   | p50 us  | p99 us  | p50 vs proxy | req/s vs proxy | server CPU us/req | server "
      "kinstr/req | client CPU us/req | failures |\n");
  std::printf(
      "|-------|-----:|--------:|--------:|--------:|-------------:|---------------:|------------------:|--------------"
      "----:|------------------:|---------:|\n");
  for (const Row& row : rows) {
    if (row.rate > 0) continue;
    const Row* proxy = ProxyRow(rows, row);
    const double p50 = row.result.PercentileUs(0.50);
    const double proxy_p50 = proxy ? proxy->result.PercentileUs(0.50) : 0;
    const double proxy_rps = proxy ? proxy->result.RequestsPerSecond() : 0;
    std::printf("| %-5s | %4d | %7.0f | %7.1f | %7.1f | %12s | %14s | %17.1f | %17s | %17.1f | %8llu |\n",
                row.mode.c_str(), row.concurrency, row.result.RequestsPerSecond(), p50, row.result.PercentileUs(0.99),
                Ratio(p50, proxy_p50).c_str(), Ratio(row.result.RequestsPerSecond(), proxy_rps).c_str(),
                row.PerAnswerUs(row.server_cpu_seconds), row.InstructionsText(proxy).c_str(),
                row.PerAnswerUs(row.client_cpu_seconds), static_cast<unsigned long long>(row.result.failures));
  }
}

// A latency percentile, or "-" without samples (an open loop so far behind
// that no request due in the window got sent).
std::string PercentileText(const LoadResult& result, double q) {
  if (result.latencies_us.empty()) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", result.PercentileUs(q));
  return text;
}

void PrintOpenTable(const std::vector<Row>& rows, int connections) {
  std::printf(
      "\nopen loop over %d connections; latency from each request's due time; "
      "kept up: achieved >= 95%% of offered (else the latencies are a growing queue's)\n",
      connections);
  std::printf(
      "| mode  | offered req/s | achieved req/s | kept up | p50 us  | p90 us  | p99 us  | p50 vs proxy | server CPU "
      "us/req | server kinstr/req | client CPU us/req | failures |\n");
  std::printf(
      "|-------|--------------:|---------------:|--------:|--------:|--------:|--------:|-------------:|---------------"
      "---:|------------------:|------------------:|---------:|\n");
  for (const Row& row : rows) {
    if (!(row.rate > 0)) continue;
    const Row* proxy = ProxyRow(rows, row);
    const double p50 = row.result.PercentileUs(0.50);
    const double proxy_p50 = proxy ? proxy->result.PercentileUs(0.50) : 0;
    std::printf("| %-5s | %13.0f | %14.0f | %7s | %7s | %7s | %7s | %12s | %17.1f | %17s | %17.1f | %8llu |\n",
                row.mode.c_str(), row.rate, row.result.AnswersPerSecond(), row.KeptUp() ? "yes" : "NO",
                PercentileText(row.result, 0.50).c_str(), PercentileText(row.result, 0.90).c_str(),
                PercentileText(row.result, 0.99).c_str(), Ratio(p50, proxy_p50).c_str(),
                row.PerAnswerUs(row.server_cpu_seconds), row.InstructionsText(proxy).c_str(),
                row.PerAnswerUs(row.client_cpu_seconds), static_cast<unsigned long long>(row.result.failures));
  }
}

struct Servers {
  ProxyBaseline& proxy;
  RouterUnderTest& router;
  bool with_trace;
};

LoadResult RunMode(const std::string& mode, const Servers& servers, const LoadOptions& options) {
  if (mode == "proxy") return RunZmqLoad(servers.proxy.frontend, ZmqProtocol::kRawEcho, false, options);
  if (mode == "zmq")
    return RunZmqLoad(servers.router.frontend(), ZmqProtocol::kThalamusQuery, servers.with_trace, options);
  return RunHttpLoad(servers.router.http_port(), options);
}

void PrintRound(int round, const Row& row, const LoadResult& result) {
  if (row.rate > 0) {
    std::fprintf(stderr, "round %d %s %.0f req/s offered: %.0f achieved, p50 %.1f us, p99 %.1f us, %llu failures\n",
                 round, row.mode.c_str(), row.rate, result.AnswersPerSecond(), result.PercentileUs(0.5),
                 result.PercentileUs(0.99), static_cast<unsigned long long>(result.failures));
    return;
  }
  std::fprintf(stderr, "round %d %s c=%d: %.0f req/s, p50 %.1f us, p99 %.1f us, %llu failures\n", round,
               row.mode.c_str(), row.concurrency, result.RequestsPerSecond(), result.PercentileUs(0.5),
               result.PercentileUs(0.99), static_cast<unsigned long long>(result.failures));
}

// Every mode at one load point, `rounds` times over, appended to `rows`.
void MeasurePoint(const LoadOptions& options, const std::vector<std::string>& modes, int rounds, const Servers& servers,
                  std::vector<Row>& rows) {
  const size_t first = rows.size();
  for (const std::string& mode : modes) rows.push_back(Row{mode, options.concurrency, options.rate, {}});
  // Rounds interleave the modes, so a burst of other work on the machine
  // lands on all of them rather than on one.
  for (int round = 0; round < rounds; ++round) {
    for (size_t m = 0; m < modes.size(); ++m) {
      Row& row = rows[first + m];
      const pid_t server = row.mode == "proxy" ? servers.proxy.process.pid() : servers.router.pid();
      // Opened first: listing the server's threads and opening their
      // counters is the load generator's CPU, not part of any request's.
      const InstructionCounter instructions(server);
      const double server_before = TreeCpuSeconds(server);
      const double client_before = OwnCpuSeconds();
      LoadResult result = RunMode(row.mode, servers, options);
      PrintRound(round + 1, row, result);
      row.Add(std::move(result), TreeCpuSeconds(server) - server_before, OwnCpuSeconds() - client_before,
              instructions.available() ? std::optional<uint64_t>(instructions.Read()) : std::nullopt);
    }
  }
}

// What each load point asks for.
struct Plan {
  std::vector<int> concurrencies;  // closed loop
  std::vector<double> rates;       // open loop
  int open_connections = 32;
  std::vector<std::string> modes;
  int rounds = 1;
  ProxyWorkers proxy_workers = ProxyWorkers::kProcesses;
};

// Exit status 1 when a row had failures, or (a broken run) no answers at all.
int CheckRows(const std::vector<Row>& rows, RouterUnderTest& router) {
  int status = 0;
  for (const Row& row : rows) {
    const uint64_t answers = row.rate > 0 ? row.result.window_answers : row.result.completed;
    if (row.result.failures == 0 && answers > 0) continue;
    std::fprintf(stderr, "FAILED: %s at %s: %llu failures, %llu answered in the window; first error: %s\n",
                 row.mode.c_str(), row.Point().c_str(), static_cast<unsigned long long>(row.result.failures),
                 static_cast<unsigned long long>(answers), row.result.first_error.c_str());
    status = 1;
  }
  if (status != 0) std::fprintf(stderr, "router log:\n%s\n", router.Log().c_str());
  return status;
}

int Run(const LoadOptions& base, const Plan& plan, const RouterOptions& router_options, bool with_trace) {
  // First, while this process has no thread and no ZeroMQ context yet.
  ProxyBaseline proxy = StartProxyBaseline(/*workers=*/router_options.replicas, plan.proxy_workers);
  RouterUnderTest router(router_options);
  std::printf("machine: %u cores, %s; load average %s\n", std::thread::hardware_concurrency(), CpuModel().c_str(),
              LoadAverage().c_str());
  std::printf("proxy: %s, %d REP workers (%s); thalamus-router: %s", proxy.frontend.c_str(), router_options.replicas,
              plan.proxy_workers == ProxyWorkers::kProcesses ? "a process each" : "threads of the proxy's process",
              router_options.binary.c_str());
  std::printf(" (front end %s, http port %d)\nconfig:\n%s", router.frontend().c_str(), router.http_port(),
              router.config_yaml().c_str());
  std::printf(
      "%d round(s) of a %.1f s window after %.1f s warm-up per mode, modes interleaved, pooled; "
      "%zu-byte prompts, zmq with_trace=%s\n",
      plan.rounds, base.seconds, base.warmup_seconds, base.payload_bytes, with_trace ? "true" : "false");
  std::fflush(stdout);

  const Servers servers{proxy, router, with_trace};
  std::vector<Row> rows;
  for (int concurrency : plan.concurrencies) {
    LoadOptions options = base;
    options.concurrency = concurrency;
    MeasurePoint(options, plan.modes, plan.rounds, servers, rows);
  }
  for (double rate : plan.rates) {
    LoadOptions options = base;
    options.concurrency = plan.open_connections;
    options.rate = rate;
    MeasurePoint(options, plan.modes, plan.rounds, servers, rows);
  }
  if (!plan.concurrencies.empty()) PrintClosedTable(rows);
  if (!plan.rates.empty()) PrintOpenTable(rows, plan.open_connections);
  return CheckRows(rows, router);
}

}  // namespace
}  // namespace thalamus::bench

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using namespace thalamus::bench;
  LoadOptions load;
  RouterOptions router;
  Plan plan;
  std::string concurrency_list;
  std::string rate_list;
  std::string mode_list;
  std::string proxy_workers;
  bool with_trace = true;
  po::options_description options(
      "bench_router_overhead: thalamus-router (ZeroMQ and HTTP front ends, echo experts) against a plain ZeroMQ "
      "proxy with REP echo workers, in a closed loop and optionally an open loop");
  options.add_options()("help,h", "show this help")("seconds", po::value(&load.seconds)->default_value(5.0),
                                                    "measured window per mode and load point")(
      "warmup", po::value(&load.warmup_seconds)->default_value(1.0), "unmeasured seconds before each window")(
      "concurrency", po::value(&concurrency_list)->default_value("1,8,32"),
      "closed loop: comma-separated client counts; \"\" for none")(
      "rates", po::value(&rate_list)->default_value(""),
      "open loop, after the closed loop: comma-separated offered requests per second over all connections "
      "(none by default)")("open-connections", po::value(&plan.open_connections)->default_value(32),
                           "open loop: connections (sockets) the requests go out on, each carrying one at a time")(
      "modes", po::value(&mode_list)->default_value("proxy,zmq,http"), "which of proxy, zmq, http to run")(
      "rounds", po::value(&plan.rounds)->default_value(1),
      "repeat each mode this often, interleaved, and pool the samples")(
      "payload-bytes", po::value(&load.payload_bytes)->default_value(64), "prompt length in every mode")(
      "replicas", po::value(&router.replicas)->default_value(2), "echo experts (and proxy REP workers)")(
      "proxy-workers", po::value(&proxy_workers)->default_value("processes"),
      "the baseline's REP workers: \"processes\" (one each, like the experts) or \"threads\" (of the proxy's "
      "process, sharing its ZeroMQ I/O thread)")("expert-concurrency", po::value(&router.concurrency)->default_value(2),
                                                 "requests each echo expert works on at once")(
      "expert-queue-limit", po::value(&router.queue_limit)->default_value(-1, "the most clients of any load point"),
      "requests each echo expert holds beyond --expert-concurrency: its pipeline depth, which the broker fills "
      "(the proxy's REP workers take all a DEALER sends them, so the default lets one replica hold every client's "
      "request, as there)")("http-threads", po::value(&router.http_threads)->default_value(0),
                            "the router's HTTP I/O threads (0: on its event loop thread)")(
      "zmq-with-trace", po::value(&with_trace)->default_value(true),
      "ask the ZeroMQ front end for the trace (the wire default)")("router", po::value(&router.binary),
                                                                   "thalamus-router binary (default: beside this one)");
  try {
    po::variables_map vars;
    po::store(po::parse_command_line(argc, argv, options), vars);
    po::notify(vars);
    if (vars.count("help")) {
      std::cout << options;
      return 0;
    }
    for (double value : ParseNumbers("--concurrency", concurrency_list, 1, 4096, true)) {
      plan.concurrencies.push_back(static_cast<int>(value));
    }
    plan.rates = ParseNumbers("--rates", rate_list, 1, 1e7, false);
    if (plan.concurrencies.empty() && plan.rates.empty())
      throw std::invalid_argument("--concurrency and --rates both empty");
    if (plan.open_connections < 1 || plan.open_connections > 4096) {
      throw std::invalid_argument("--open-connections must be in [1, 4096]");
    }
    plan.modes = ParseModes(mode_list);
    if (proxy_workers != "processes" && proxy_workers != "threads") {
      throw std::invalid_argument("--proxy-workers: '" + proxy_workers + "' is not processes or threads");
    }
    plan.proxy_workers = proxy_workers == "threads" ? ProxyWorkers::kThreads : ProxyWorkers::kProcesses;
    if (!(load.seconds > 0) || !(load.warmup_seconds >= 0))
      throw std::invalid_argument("--seconds must be > 0, --warmup >= 0");
    if (plan.rounds < 1) throw std::invalid_argument("--rounds must be >= 1");
    if (load.payload_bytes < kMinPayloadBytes || load.payload_bytes > (1 << 20)) {
      throw std::invalid_argument("--payload-bytes must be in [" + std::to_string(kMinPayloadBytes) + ", 1048576]");
    }
    if (vars["expert-queue-limit"].defaulted()) {
      router.queue_limit = plan.rates.empty() ? 0 : plan.open_connections;
      for (int clients : plan.concurrencies) router.queue_limit = std::max(router.queue_limit, clients);
    }
    if (router.replicas < 1 || router.concurrency < 1 || router.queue_limit < 0 || router.http_threads < 0) {
      throw std::invalid_argument(
          "--replicas and --expert-concurrency must be >= 1, --expert-queue-limit and --http-threads >= 0");
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_router_overhead: " << e.what() << "\n" << options;
    return 2;
  }
  if (router.binary.empty()) router.binary = OwnDirectory() + "/thalamus-router";
  if (access(router.binary.c_str(), X_OK) != 0) {
    std::cerr << "bench_router_overhead: no executable " << router.binary
              << " (build thalamus-router, or pass --router)\n";
    return 2;
  }
  try {
    return Run(load, plan, router, with_trace);
  } catch (const std::exception& e) {
    std::cerr << "bench_router_overhead: " << e.what() << "\n";
    return 1;
  }
}
