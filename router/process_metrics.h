// The standard process_* series of the Prometheus client libraries (CPU
// seconds, resident and virtual memory, open and maximum file descriptors,
// start time), read from /proc/self for the router's /metrics. Written here
// because prometheus-cpp has no process collector. Thread-safe; a file that
// cannot be read leaves its series out rather than failing the scrape.
#pragma once

#include <vector>

#include <prometheus/metric_family.h>

namespace thalamus::router {

std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace thalamus::router
