// The router's Prometheus metrics (prometheus-cpp), served at GET /metrics.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace prometheus {
class Registry;
}

namespace thalamus::router {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // thalamus_http_requests_total{endpoint,status}, thalamus_http_request_duration_seconds{endpoint}
  void ObserveHttp(const std::string& endpoint, int status, double seconds);
  // thalamus_frontend_requests_total{status} for the ZeroMQ front end, and its latency
  void ObserveFrontend(const std::string& status, double seconds);
  // thalamus_expert_requests_total{service,status}, thalamus_expert_failures_total{service,reason},
  // thalamus_expert_request_duration_seconds{service}
  void ObserveExpert(const std::string& service, const std::string& status, double seconds);
  void CountExpertFailure(const std::string& service, const std::string& reason);
  void CountRetry(const std::string& service);
  // thalamus_live_workers{service}, thalamus_queue_depth{service}, thalamus_in_flight{service}
  void SetLiveWorkers(const std::string& service, int n);
  void SetQueueDepth(const std::string& service, int n);
  void SetInFlight(const std::string& service, int n);
  // thalamus_gate_selections_total{service}, thalamus_gate_fallbacks_total{reason}
  void CountGateSelection(const std::string& service);
  void CountGateFallback(const std::string& reason);
  // thalamus_invalid_frames_total{endpoint}: ZeroMQ frames refused by messages::Decode, on the
  // "frontend" and the "backend" (both series exist from the start, at 0).
  void CountInvalidFrame(const std::string& endpoint);
  // thalamus_frontend_dropped_answers_total: answer frames not sent to a ZeroMQ client at its
  // high-water mark (a client that does not read).
  void CountDroppedAnswer();
  // thalamus_api_key_requests_total{key,status}: HTTP requests per API key name (never the key).
  void ObserveApiKey(const std::string& key_name, int status);
  // thalamus_auth_failures_total{endpoint}: CURVE handshakes refused by the ZAP handler
  // (frontend, backend), HTTP requests without a valid API key (http).
  void CountAuthFailure(const std::string& endpoint);
  // thalamus_refused_workers_total{service}: READYs refused (unknown service: service="", or a cap).
  void CountRefusedWorker(const std::string& service);
  // thalamus_gate_entropy: entropy of the trained gate's distribution per decision
  void ObserveGateEntropy(double bits);
  // Streamed answers, by the service whose text streams:
  // thalamus_time_to_first_token_seconds{service} (query arrival to first
  // text) and thalamus_inter_token_latency_seconds{service} (between pieces).
  void ObserveTimeToFirstToken(const std::string& service, double seconds);
  void ObserveInterTokenLatency(const std::string& service, double seconds);
  // thalamus_prompt_tokens_total{service}, thalamus_completion_tokens_total{service}:
  // what each expert's answers report.
  void CountTokens(const std::string& service, uint64_t prompt, uint64_t completion);
  // thalamus_expert_restarts_total{service}: local expert processes the supervisor restarted.
  void CountRestart(const std::string& service);
  // Creates a configured service's counters at 0 (retries, restarts, gate
  // selections, a failure series per error status), so that rate() and
  // increase() in alerts and dashboards see 0 rather than no data until the
  // first event.
  void DeclareService(const std::string& service);

  // The Prometheus text exposition format, with thalamus_build_info and the
  // process_* series of this process (process_metrics.h).
  std::string Serialize() const;
  prometheus::Registry& registry();

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
};

}  // namespace thalamus::router
