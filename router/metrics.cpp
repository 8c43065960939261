#include "router/metrics.h"

#include "messages/messages.h"
#include "router/process_metrics.h"
#include "thalamus/version.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace thalamus::router {

namespace {

// 0 bits is a certain gate; log2(N) a uniform one over N services.
const prometheus::Histogram::BucketBoundaries& EntropyBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {0.05, 0.1, 0.25, 0.5, 0.75, 1.0,
                                                                  1.5,  2.0, 3.0,  4.0, 6.0};
  return buckets;
}

// Between two streamed pieces: a CPU decode step of a small model is a few
// milliseconds, a large one on a loaded machine a second or more.
const prometheus::Histogram::BucketBoundaries& TokenGapBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                  0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  return buckets;
}

// Request latencies range from a cached health probe (~1 ms) to a long
// generation on a CPU model (minutes); roughly x2.5 steps up to 120 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0};
  return buckets;
}

// Family::Add allocates a fresh metric before it looks the labels up, so the
// series each call site touches are cached here, keyed by the label values
// joined into one string: a hit builds no prometheus::Labels map. These calls
// run several times per request on the router's event loop, where even the
// lock of a shared map cost several percent of its cycles; so each thread
// first looks in a map of its own, and takes the lock only for a series it
// has not used yet. Entries of the thread's map are keyed by the cache's id
// (never reused, unlike its address) and hold pointers that live as long as
// the family, i.e. as long as the Metrics that owns this cache.
template <typename Metric, size_t kLabels>
class SeriesCache {
 public:
  SeriesCache(prometheus::Family<Metric>& family, std::array<const char*, kLabels> names)
      : family_(family), names_(names), id_(next_id_.fetch_add(1)) {}

  template <typename... Args>
  Metric& Get(const std::array<std::string_view, kLabels>& values, Args&&... args) {
    thread_local std::unordered_map<std::string, Metric*> seen;  // this thread's hits, of every cache of this type
    std::string key(reinterpret_cast<const char*>(&id_), sizeof(id_));
    for (std::string_view value : values) key.append(value).push_back('\0');
    if (auto it = seen.find(key); it != seen.end()) return *it->second;
    Metric& metric = Shared(key, values, std::forward<Args>(args)...);
    seen.emplace(std::move(key), &metric);
    return metric;
  }

 private:
  template <typename... Args>
  Metric& Shared(const std::string& key, const std::array<std::string_view, kLabels>& values, Args&&... args) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = series_.find(key);
    if (it != series_.end()) return *it->second;
    prometheus::Labels labels;
    for (size_t i = 0; i < kLabels; ++i) labels.emplace(names_[i], std::string(values[i]));
    Metric& metric = family_.Add(labels, std::forward<Args>(args)...);
    series_.emplace(key, &metric);
    return metric;
  }

  static inline std::atomic<uint64_t> next_id_{0};
  prometheus::Family<Metric>& family_;
  const std::array<const char*, kLabels> names_;
  const uint64_t id_;
  std::mutex mu_;
  std::unordered_map<std::string, Metric*> series_;
};

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry, const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry, const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Histogram>& HistogramFamily(prometheus::Registry& registry, const std::string& name,
                                                           const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

}  // namespace

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : http_requests(
            CounterFamily(r, "thalamus_http_requests_total", "HTTP requests answered, by route and status code."),
            {"endpoint", "status"}),
        http_duration(HistogramFamily(r, "thalamus_http_request_duration_seconds",
                                      "Time from a request's arrival to the end of its answer."),
                      {"endpoint"}),
        frontend_requests(
            CounterFamily(r, "thalamus_frontend_requests_total", "ZeroMQ front-end queries answered, by status."),
            {"status"}),
        frontend_duration(
            HistogramFamily(r, "thalamus_frontend_request_duration_seconds", "ZeroMQ front-end query latency."), {}),
        expert_requests(
            CounterFamily(r, "thalamus_expert_requests_total", "Requests sent to expert services, by final status."),
            {"service", "status"}),
        expert_failures(CounterFamily(r, "thalamus_expert_failures_total", "Expert request failures, by reason."),
                        {"service", "reason"}),
        expert_duration(HistogramFamily(r, "thalamus_expert_request_duration_seconds",
                                        "Expert request latency as the broker sees it."),
                        {"service"}),
        retries(CounterFamily(r, "thalamus_expert_retries_total", "Expert requests retried on another worker."),
                {"service"}),
        live_workers(GaugeFamily(r, "thalamus_live_workers", "Live workers per service."), {"service"}),
        queue_depth(GaugeFamily(r, "thalamus_queue_depth", "Requests waiting for a worker, per service."), {"service"}),
        in_flight(GaugeFamily(r, "thalamus_in_flight", "Requests being worked on, per service."), {"service"}),
        gate_selections(CounterFamily(r, "thalamus_gate_selections_total", "Times the gate chose each service."),
                        {"service"}),
        gate_fallbacks(
            CounterFamily(r, "thalamus_gate_fallbacks_total", "Times the gate fell back to its rule, by reason."),
            {"reason"}),
        // No unit suffix: promtool knows no "bits" unit and asks for base units.
        gate_entropy(HistogramFamily(r, "thalamus_gate_entropy",
                                     "Entropy of the trained gate's distribution over services, in bits."),
                     {}),
        invalid_frames(CounterFamily(r, "thalamus_invalid_frames_total",
                                     "ZeroMQ frames refused as malformed, by endpoint (frontend, backend)."),
                       {"endpoint"}),
        refused_workers(CounterFamily(r, "thalamus_refused_workers_total",
                                      "READY messages refused: a service the config does not name (service=\"\") "
                                      "or one at its worker cap."),
                        {"service"}),
        auth_failures(CounterFamily(r, "thalamus_auth_failures_total",
                                    "CURVE handshakes refused: keys not in the endpoint's authorized keys."),
                      {"endpoint"}),
        api_key_requests(
            CounterFamily(r, "thalamus_api_key_requests_total", "HTTP requests by API key name and status code."),
            {"key", "status"}),
        time_to_first_token(HistogramFamily(r, "thalamus_time_to_first_token_seconds",
                                            "Streamed queries: from the query's arrival to its first text, by "
                                            "the service that streams it."),
                            {"service"}),
        inter_token_latency(HistogramFamily(r, "thalamus_inter_token_latency_seconds",
                                            "Streamed queries: time between two pieces of text, by service."),
                            {"service"}),
        prompt_tokens(CounterFamily(r, "thalamus_prompt_tokens_total", "Prompt tokens experts read, by service."),
                      {"service"}),
        completion_tokens(CounterFamily(r, "thalamus_completion_tokens_total", "Tokens experts generated, by service."),
                          {"service"}),
        build_info(GaugeFamily(r, "thalamus_build_info", "Always 1; the labels say which build this is."),
                   {"version", "revision"}),
        restarts(CounterFamily(r, "thalamus_expert_restarts_total",
                               "Local expert processes restarted by the supervisor after they exited."),
                 {"service"}),
        dropped_answers(CounterFamily(r, "thalamus_frontend_dropped_answers_total",
                                      "Answer frames dropped for ZeroMQ clients that did not read them."),
                        {}) {
    dropped_answers.Get({});
    build_info.Get({THALAMUS_VERSION, THALAMUS_REVISION}).Set(1);
    frontend_duration.Get({}, LatencyBuckets());
    gate_entropy.Get({}, EntropyBuckets());
    refused_workers.Get({""});
    for (const char* endpoint : {"frontend", "backend", "http"}) auth_failures.Get({endpoint});
    for (const char* endpoint : {"frontend", "backend"}) invalid_frames.Get({endpoint});
  }

  SeriesCache<prometheus::Counter, 2> http_requests;
  SeriesCache<prometheus::Histogram, 1> http_duration;
  SeriesCache<prometheus::Counter, 1> frontend_requests;
  SeriesCache<prometheus::Histogram, 0> frontend_duration;
  SeriesCache<prometheus::Counter, 2> expert_requests;
  SeriesCache<prometheus::Counter, 2> expert_failures;
  SeriesCache<prometheus::Histogram, 1> expert_duration;
  SeriesCache<prometheus::Counter, 1> retries;
  SeriesCache<prometheus::Gauge, 1> live_workers;
  SeriesCache<prometheus::Gauge, 1> queue_depth;
  SeriesCache<prometheus::Gauge, 1> in_flight;
  SeriesCache<prometheus::Counter, 1> gate_selections;
  SeriesCache<prometheus::Counter, 1> gate_fallbacks;
  SeriesCache<prometheus::Histogram, 0> gate_entropy;
  SeriesCache<prometheus::Counter, 1> invalid_frames;
  SeriesCache<prometheus::Counter, 1> refused_workers;
  SeriesCache<prometheus::Counter, 1> auth_failures;
  SeriesCache<prometheus::Counter, 2> api_key_requests;
  SeriesCache<prometheus::Histogram, 1> time_to_first_token;
  SeriesCache<prometheus::Histogram, 1> inter_token_latency;
  SeriesCache<prometheus::Counter, 1> prompt_tokens;
  SeriesCache<prometheus::Counter, 1> completion_tokens;
  SeriesCache<prometheus::Gauge, 2> build_info;
  SeriesCache<prometheus::Counter, 1> restarts;
  SeriesCache<prometheus::Counter, 0> dropped_answers;
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()), families_(std::make_unique<Families>(*registry_)) {}

Metrics::~Metrics() = default;

void Metrics::ObserveHttp(const std::string& endpoint, int status, double seconds) {
  char code[16];
  const int length = std::snprintf(code, sizeof(code), "%d", status);
  families_->http_requests.Get({endpoint, std::string_view(code, static_cast<size_t>(length))}).Increment();
  families_->http_duration.Get({endpoint}, LatencyBuckets()).Observe(seconds);
}

void Metrics::ObserveFrontend(const std::string& status, double seconds) {
  families_->frontend_requests.Get({status}).Increment();
  families_->frontend_duration.Get({}, LatencyBuckets()).Observe(seconds);
}

void Metrics::ObserveExpert(const std::string& service, const std::string& status, double seconds) {
  families_->expert_requests.Get({service, status}).Increment();
  families_->expert_duration.Get({service}, LatencyBuckets()).Observe(seconds);
}

void Metrics::CountExpertFailure(const std::string& service, const std::string& reason) {
  families_->expert_failures.Get({service, reason}).Increment();
}

void Metrics::CountRetry(const std::string& service) { families_->retries.Get({service}).Increment(); }

void Metrics::SetLiveWorkers(const std::string& service, int n) { families_->live_workers.Get({service}).Set(n); }

void Metrics::SetQueueDepth(const std::string& service, int n) { families_->queue_depth.Get({service}).Set(n); }

void Metrics::SetInFlight(const std::string& service, int n) { families_->in_flight.Get({service}).Set(n); }

void Metrics::CountInvalidFrame(const std::string& endpoint) { families_->invalid_frames.Get({endpoint}).Increment(); }

void Metrics::ObserveTimeToFirstToken(const std::string& service, double seconds) {
  families_->time_to_first_token.Get({service}, LatencyBuckets()).Observe(seconds);
}

void Metrics::ObserveInterTokenLatency(const std::string& service, double seconds) {
  families_->inter_token_latency.Get({service}, TokenGapBuckets()).Observe(seconds);
}

void Metrics::CountTokens(const std::string& service, uint64_t prompt, uint64_t completion) {
  if (prompt) families_->prompt_tokens.Get({service}).Increment(static_cast<double>(prompt));
  if (completion) families_->completion_tokens.Get({service}).Increment(static_cast<double>(completion));
}

void Metrics::CountRestart(const std::string& service) { families_->restarts.Get({service}).Increment(); }

void Metrics::DeclareService(const std::string& service) {
  families_->retries.Get({service});
  families_->restarts.Get({service});
  families_->expert_duration.Get({service}, LatencyBuckets());
  families_->time_to_first_token.Get({service}, LatencyBuckets());
  families_->inter_token_latency.Get({service}, TokenGapBuckets());
  families_->prompt_tokens.Get({service});
  families_->completion_tokens.Get({service});
  families_->gate_selections.Get({service});
  for (const wire::StatusCode code : wire::EnumValuesStatusCode()) {
    if (code != wire::StatusCode::OK) families_->expert_failures.Get({service, messages::StatusName(code)});
  }
}

void Metrics::CountDroppedAnswer() { families_->dropped_answers.Get({}).Increment(); }

void Metrics::ObserveApiKey(const std::string& key_name, int status) {
  families_->api_key_requests.Get({key_name, std::to_string(status)}).Increment();
}

void Metrics::CountAuthFailure(const std::string& endpoint) { families_->auth_failures.Get({endpoint}).Increment(); }

void Metrics::CountRefusedWorker(const std::string& service) { families_->refused_workers.Get({service}).Increment(); }

void Metrics::CountGateSelection(const std::string& service) { families_->gate_selections.Get({service}).Increment(); }

void Metrics::CountGateFallback(const std::string& reason) { families_->gate_fallbacks.Get({reason}).Increment(); }

void Metrics::ObserveGateEntropy(double bits) { families_->gate_entropy.Get({}, EntropyBuckets()).Observe(bits); }

std::string Metrics::Serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& family : CollectProcessMetrics()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

prometheus::Registry& Metrics::registry() { return *registry_; }

}  // namespace thalamus::router
