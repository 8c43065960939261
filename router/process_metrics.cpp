#include "router/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace thalamus::router {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type, double value) {
  prometheus::MetricFamily family{name, help, type, {}};
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(metric);
  return family;
}

// Seconds since the epoch at which the machine booted (/proc/stat btime), or -1.
double BootTime() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

}  // namespace

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  std::vector<prometheus::MetricFamily> families;
  // /proc/self/stat: "pid (comm) state ..." where comm may hold spaces, so
  // the fields are counted from the last ')'; utime and stime are fields 14
  // and 15, starttime 22, vsize 23 and rss 24 (proc(5)).
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line) && line.rfind(')') != std::string::npos) try {
      std::istringstream fields(line.substr(line.rfind(')') + 2));
      std::string field;
      std::vector<std::string> values;  // from field 3 on
      while (fields >> field) values.push_back(field);
      if (values.size() >= 22) {
        const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
        const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
        const double cpu = (std::stod(values[11]) + std::stod(values[12])) / ticks;
        families.push_back(Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                  prometheus::MetricType::Counter, cpu));
        families.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                  prometheus::MetricType::Gauge, std::stod(values[20])));
        families.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  prometheus::MetricType::Gauge, std::stod(values[21]) * page));
        if (const double boot = BootTime(); boot >= 0) {
          families.push_back(Family("process_start_time_seconds",
                                    "Start time of the process since unix epoch in seconds.",
                                    prometheus::MetricType::Gauge, boot + std::stod(values[19]) / ticks));
        }
      }
    } catch (const std::exception&) {  // not numbers where proc(5) says: leave them out
    }
  std::error_code error;
  double open = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++open;
  }
  if (!error) {
    families.push_back(
        Family("process_open_fds", "Number of open file descriptors.", prometheus::MetricType::Gauge, open));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    families.push_back(Family("process_max_fds", "Maximum number of open file descriptors.",
                              prometheus::MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return families;
}

}  // namespace thalamus::router
