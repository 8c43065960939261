// Metrics: the Prometheus text the router serves at GET /metrics.
#include "router/metrics.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace thalamus::router {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(MetricsTest, HttpRequestsAreCountedAndTimed) {
  Metrics metrics;
  metrics.ObserveHttp("/v1/chat/completions", 200, 0.002);
  metrics.ObserveHttp("/v1/chat/completions", 200, 3.0);
  metrics.ObserveHttp("/v1/chat/completions", 429, 0.0001);
  std::string text = metrics.Serialize();
  EXPECT_TRUE(Has(text, "# TYPE thalamus_http_requests_total counter")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_http_requests_total{endpoint="/v1/chat/completions",status="200"} 2)"));
  EXPECT_TRUE(Has(text, R"(thalamus_http_requests_total{endpoint="/v1/chat/completions",status="429"} 1)"));
  EXPECT_TRUE(Has(text, "# TYPE thalamus_http_request_duration_seconds histogram"));
  const std::string bucket = R"(thalamus_http_request_duration_seconds_bucket{endpoint="/v1/chat/completions",le=)";
  EXPECT_TRUE(Has(text, bucket + R"("0.001"} 1)")) << text;
  EXPECT_TRUE(Has(text, bucket + R"("0.0025"} 2)"));
  EXPECT_TRUE(Has(text, bucket + R"("2.5"} 2)"));
  EXPECT_TRUE(Has(text, bucket + R"("5"} 3)"));
  EXPECT_TRUE(Has(text, bucket + R"("120"} 3)"));
  EXPECT_TRUE(Has(text, bucket + R"("+Inf"} 3)"));
  EXPECT_TRUE(Has(text, R"(thalamus_http_request_duration_seconds_count{endpoint="/v1/chat/completions"} 3)"));
}

TEST(MetricsTest, EveryFamilyIsExported) {
  Metrics metrics;
  metrics.ObserveFrontend("ok", 0.01);
  metrics.ObserveExpert("mamba", "ok", 1.5);
  metrics.CountExpertFailure("mamba", "timeout");
  metrics.CountRetry("mamba");
  metrics.SetLiveWorkers("mamba", 3);
  metrics.SetQueueDepth("mamba", 7);
  metrics.SetInFlight("mamba", 2);
  metrics.SetLiveWorkers("mamba", 2);  // gauges keep the last value
  metrics.CountGateSelection("mamba");
  metrics.CountGateFallback("no_gate_file");
  std::string text = metrics.Serialize();
  EXPECT_TRUE(Has(text, R"(thalamus_frontend_requests_total{status="ok"} 1)")) << text;
  EXPECT_TRUE(Has(text, "thalamus_frontend_request_duration_seconds_count 1"));
  EXPECT_TRUE(Has(text, R"(thalamus_expert_requests_total{service="mamba",status="ok"} 1)"));
  EXPECT_TRUE(Has(text, R"(thalamus_expert_request_duration_seconds_sum{service="mamba"} 1.5)"));
  EXPECT_TRUE(Has(text, R"(thalamus_expert_failures_total{reason="timeout",service="mamba"} 1)"));
  EXPECT_TRUE(Has(text, R"(thalamus_expert_retries_total{service="mamba"} 1)"));
  EXPECT_TRUE(Has(text, R"(thalamus_live_workers{service="mamba"} 2)"));
  EXPECT_TRUE(Has(text, R"(thalamus_queue_depth{service="mamba"} 7)"));
  EXPECT_TRUE(Has(text, R"(thalamus_in_flight{service="mamba"} 2)"));
  EXPECT_TRUE(Has(text, R"(thalamus_gate_selections_total{service="mamba"} 1)"));
  EXPECT_TRUE(Has(text, R"(thalamus_gate_fallbacks_total{reason="no_gate_file"} 1)"));
}

// A configured service's counters exist at 0 before the first event, so
// that alerts on rate()/increase() see 0, not "no data".
TEST(MetricsTest, DeclaredServicesStartAtZero) {
  Metrics metrics;
  metrics.DeclareService("docs");
  metrics.CountRestart("docs");
  std::string text = metrics.Serialize();
  EXPECT_TRUE(Has(text, R"(thalamus_expert_retries_total{service="docs"} 0)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_gate_selections_total{service="docs"} 0)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_expert_failures_total{reason="deadline_exceeded",service="docs"} 0)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_expert_restarts_total{service="docs"} 1)")) << text;
  EXPECT_FALSE(Has(text, R"(reason="ok")")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_time_to_first_token_seconds_count{service="docs"} 0)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_prompt_tokens_total{service="docs"} 0)")) << text;
}

TEST(MetricsTest, StreamingTokensBuildAndProcess) {
  Metrics metrics;
  metrics.ObserveTimeToFirstToken("mamba", 0.2);
  metrics.ObserveInterTokenLatency("mamba", 0.01);
  metrics.ObserveInterTokenLatency("mamba", 0.03);
  metrics.CountTokens("mamba", 12, 5);
  std::string text = metrics.Serialize();
  EXPECT_TRUE(Has(text, R"(thalamus_time_to_first_token_seconds_sum{service="mamba"} 0.2)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_inter_token_latency_seconds_count{service="mamba"} 2)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_prompt_tokens_total{service="mamba"} 12)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_completion_tokens_total{service="mamba"} 5)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_build_info{revision=")")) << text;
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds ",
                           "process_max_fds ", "process_start_time_seconds ", "process_virtual_memory_bytes "}) {
    EXPECT_TRUE(Has(text, name)) << name << "\n" << text;
  }
}

// Each thread remembers the series it used; a Metrics made after another one
// is gone (likely at the same address) must still count in its own series.
TEST(MetricsTest, ALaterMetricsCountsInItsOwnSeries) {
  for (int round = 0; round < 3; ++round) {
    auto metrics = std::make_unique<Metrics>();
    metrics->CountGateSelection("mamba");
    metrics->SetQueueDepth("mamba", round);
    const std::string text = metrics->Serialize();
    EXPECT_TRUE(Has(text, R"(thalamus_gate_selections_total{service="mamba"} 1)")) << "round " << round << "\n" << text;
    EXPECT_TRUE(Has(text, R"(thalamus_queue_depth{service="mamba"} )" + std::to_string(round))) << text;
  }
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  Metrics metrics;
  metrics.CountExpertFailure("svc", "bad \"quote\"\nnewline");
  EXPECT_TRUE(Has(metrics.Serialize(), R"(reason="bad \"quote\"\nnewline")")) << metrics.Serialize();
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Metrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < 2000; ++i) {
        metrics.ObserveHttp("/healthz", 200, 0.001);
        metrics.ObserveHttp("/v1/models", 200 + t, 0.001);  // new series appear concurrently
        if (i % 100 == 0) metrics.Serialize();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::string text = metrics.Serialize();
  EXPECT_TRUE(Has(text, R"(thalamus_http_requests_total{endpoint="/healthz",status="200"} 8000)")) << text;
  EXPECT_TRUE(Has(text, R"(thalamus_http_requests_total{endpoint="/v1/models",status="203"} 2000)"));
}

}  // namespace
}  // namespace thalamus::router
