// Starts the real router and experts on loopback with ephemeral ports.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "messages/messages.h"
#include "tests/support/process.h"

namespace thalamus {
namespace {

using nlohmann::json;
using testing::HttpRequest;
using testing::Process;
using testing::WaitFor;
using namespace std::chrono_literals;

std::string Header(int queue_limit, int http_threads) {
  return "http: {port: 0, threads: " + std::to_string(http_threads) +
         "}\n"
         "broker: {frontend: \"tcp://127.0.0.1:*\", backend: \"tcp://127.0.0.1:*\", heartbeat_ms: 100, liveness: 3, "
         "queue_limit: " +
         std::to_string(queue_limit) +
         "}\n"
         "supervisor: {restart_backoff_ms: 100}\n";
}

// A router (and, through its supervisor, its local experts) from `experts_yaml`.
class Cluster {
 public:
  // http_threads 0 (the default): HTTP on the router's event loop thread.
  explicit Cluster(const std::string& body, bool wait_ready = true, int queue_limit = 1000, int http_threads = 0) {
    config_ = dir_.Write("thalamus.yaml", Header(queue_limit, http_threads) + body);
    const std::string ready = dir_.path() + "/ready.json";
    router_ = Process(testing::BinDir() + "/thalamus-router", {"--config", config_, "--ready-file", ready}, log());
    bool up = WaitFor([&] { return !testing::ReadFile(ready).empty(); }, 20s);
    if (!up) throw std::runtime_error("router did not start: " + testing::ReadFile(log()));
    json info = json::parse(testing::ReadFile(ready));
    port_ = info["http_port"];
    backend_ = info["backend"];
    frontend_ = info["frontend"];
    if (wait_ready && !WaitFor([&] { return HttpRequest(port_, "GET", "/readyz").status == 200; }, 20s)) {
      throw std::runtime_error("router not ready: " + testing::ReadFile(log()));
    }
  }

  // An expert started by hand, as on another host.
  Process StartExpert(const std::string& name, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--config", config_, "--expert", name, "--backend", backend_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Process(testing::BinDir() + "/thalamus-expert", args, log());
  }
  const std::string& dir() const { return dir_.path(); }

  int port() const { return port_; }
  const std::string& frontend() const { return frontend_; }
  Process& router() { return router_; }
  std::string log() const { return dir_.path() + "/log.txt"; }

 private:
  testing::TempDir dir_;
  std::string config_;
  Process router_;
  int port_ = 0;
  std::string backend_;
  std::string frontend_;
};

json Chat(const std::string& text, const std::string& model = "", bool stream = false) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", text}}})}, {"stream", stream}};
  if (!model.empty()) body["model"] = model;
  return body;
}

int LiveWorkers(int port, const std::string& service) {
  auto response = HttpRequest(port, "GET", "/v1/models");
  if (response.status != 200) return -1;
  const json models = json::parse(response.body);
  for (const json& model : models["data"]) {
    if (model["id"] == service) return model.value("live_workers", -1);
  }
  return -1;
}

// With HTTP on the router's event loop thread (http.threads: 0) and on I/O threads of its own.
class RouterHttpThreads : public ::testing::TestWithParam<int> {};

TEST_P(RouterHttpThreads, ChatCompletionThroughAnEchoExpert) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 1}\n", /*wait_ready=*/true, /*queue_limit=*/1000,
                  /*http_threads=*/GetParam());
  auto response = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", Chat("hello thalamus").dump());
  ASSERT_EQ(response.status, 200) << response.body;
  json answer = json::parse(response.body);
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_EQ(answer["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(answer["choices"][0]["message"]["content"], "hello thalamus");
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "stop");

  auto completion = HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "abc def"}}).dump());
  ASSERT_EQ(completion.status, 200) << completion.body;
  EXPECT_EQ(json::parse(completion.body)["choices"][0]["text"], "abc def");

  auto metrics = HttpRequest(cluster.port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("thalamus_http_requests_total"), std::string::npos);
  EXPECT_NE(metrics.body.find("thalamus_expert_requests_total{service=\"echo\",status=\"ok\"}"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("thalamus_live_workers{service=\"echo\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("thalamus_gate_selections_total{service=\"echo\"}"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(RouterIntegration, RouterHttpThreads, ::testing::Values(0, 2),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "http_threads_" + std::to_string(info.param);
                         });

TEST(RouterIntegration, StreamsServerSentEventsEndingInDone) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 1, delay_ms: 40}\n");
  auto response = HttpRequest(cluster.port(), "POST", "/v1/chat/completions",
                              Chat("one two three four", "echo", /*stream=*/true).dump());
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_NE(response.headers["content-type"].find("text/event-stream"), std::string::npos);
  auto events = testing::SseData(response.body);
  ASSERT_GE(events.size(), 3u) << response.body;
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  int content_chunks = 0;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    const json& delta = chunk["choices"][0]["delta"];
    if (delta.contains("content")) {
      text += delta["content"].get<std::string>();
      ++content_chunks;
    }
  }
  EXPECT_EQ(text, "one two three four");
  EXPECT_EQ(content_chunks, 4);  // word by word, as the expert produced them
}

TEST(RouterIntegration, NativeQueryReturnsTheTrace) {
  Cluster cluster(
      "experts:\n  - {name: echo, kind: echo, replicas: 1}\n  - {name: other, kind: echo, prefix: 'B:', replicas: "
      "1}\n");
  auto response =
      HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", "x"}, {"experts", {"other"}}}).dump());
  ASSERT_EQ(response.status, 200) << response.body;
  json answer = json::parse(response.body);
  EXPECT_EQ(answer["answer"], "B:x");
  EXPECT_EQ(answer["trace"]["chosen"], json::array({"other"}));
  EXPECT_EQ(answer["trace"]["plan"], "direct");
  ASSERT_EQ(answer["trace"]["experts"].size(), 1u);
  EXPECT_EQ(answer["trace"]["experts"][0]["service"], "other");
  EXPECT_EQ(answer["trace"]["experts"][0]["attempts"], 1);
  EXPECT_NE(answer["trace"]["experts"][0]["worker"].get<std::string>().find(':'), std::string::npos);

  auto unknown = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", Chat("x", "nobody").dump());
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_TRUE(json::parse(unknown.body).contains("error"));
}

TEST(RouterIntegration, NoRequestLostWhenAReplicaIsKilledMidLoad) {
  Cluster cluster(
      "experts:\n  - {name: echo, kind: echo, launch: external, replicas: 2, concurrency: 2, delay_ms: 30}\n",
      /*wait_ready=*/false);
  Process first = cluster.StartExpert("echo");
  Process second = cluster.StartExpert("echo");
  ASSERT_TRUE(WaitFor([&] { return LiveWorkers(cluster.port(), "echo") == 2; }, 20s))
      << testing::ReadFile(cluster.log()) << HttpRequest(cluster.port(), "GET", "/v1/models").body;

  constexpr int kClients = 8, kPerClient = 25;
  std::atomic<int> ok{0}, done{0};
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kPerClient; ++i) {
        const std::string text = "client " + std::to_string(c) + " request " + std::to_string(i);
        auto response = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", Chat(text).dump());
        if (response.status == 200 && json::parse(response.body)["choices"][0]["message"]["content"] == text) {
          ++ok;
        } else {
          failures[c] += std::to_string(response.status) + " " + response.body + "\n";
        }
        ++done;
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return done.load() >= kClients * kPerClient / 4; }, 60s));
  first.Signal(SIGKILL);  // no goodbye: the broker must notice missed heartbeats and retry
  for (auto& client : clients) client.join();
  std::string all_failures;
  for (auto& f : failures) all_failures += f;
  EXPECT_EQ(ok.load(), kClients * kPerClient) << all_failures;
  EXPECT_EQ(LiveWorkers(cluster.port(), "echo"), 1);
  auto metrics = HttpRequest(cluster.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("thalamus_expert_retries_total{service=\"echo\"}"), std::string::npos) << metrics;
}

// A rolling restart (as Kubernetes does one: SIGTERM to each replica in turn,
// a replacement started first) under load, with streamed and complete
// answers: drained replicas finish what they hold, so nothing fails, streams
// included (a stream cut short cannot be retried). Answers take 1 s, longer
// than the broker waits for a silent worker (3 heartbeats of 100 ms): a
// worker that stopped heartbeating while it finished its work (as before
// draining) lost its streams.
TEST(RouterIntegration, RollingRestartUnderLoadLosesNothing) {
  Cluster cluster(
      "experts:\n  - {name: echo, kind: echo, launch: external, replicas: 2, concurrency: 2, delay_ms: 1000}\n",
      /*wait_ready=*/false);
  std::vector<Process> replicas;
  replicas.push_back(cluster.StartExpert("echo"));
  replicas.push_back(cluster.StartExpert("echo"));
  ASSERT_TRUE(WaitFor([&] { return LiveWorkers(cluster.port(), "echo") == 2; }, 20s))
      << testing::ReadFile(cluster.log());

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::mutex failures_mutex;
  std::string failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < 6; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop.load(); ++i) {
        const bool stream = (c + i) % 2 == 0;
        const std::string text = "client " + std::to_string(c) + " asks " + std::to_string(i);
        auto response = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", Chat(text, "", stream).dump());
        const bool good =
            response.status == 200 && (stream ? response.body.find("[DONE]") != std::string::npos &&
                                                    response.body.find("\"error\"") == std::string::npos
                                              : json::parse(response.body)["choices"][0]["message"]["content"] == text);
        if (good) {
          ++ok;
        } else {
          ++failed;
          std::lock_guard lock(failures_mutex);
          failures += std::to_string(response.status) + " " + response.body.substr(0, 300) + "\n";
        }
      }
    });
  }
  for (int round = 0; round < 2; ++round) {
    std::this_thread::sleep_for(400ms);
    replicas.push_back(cluster.StartExpert("echo"));  // the replacement first (maxSurge)
    ASSERT_TRUE(WaitFor([&] { return LiveWorkers(cluster.port(), "echo") == 3; }, 20s));
    Process& old = replicas[round];
    old.Signal(SIGTERM);
    EXPECT_EQ(old.Wait(20s), 0);
    ASSERT_TRUE(WaitFor([&] { return LiveWorkers(cluster.port(), "echo") == 2; }, 20s));
  }
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& client : clients) client.join();
  EXPECT_EQ(failed.load(), 0) << failures;
  EXPECT_GT(ok.load(), 20);
  const std::string log = testing::ReadFile(cluster.log());
  EXPECT_NE(log.find("is draining from service 'echo'"), std::string::npos) << log;
}

TEST(RouterIntegration, DeadlineExceededAnswers504AndFreesTheWorker) {
  Cluster cluster("experts:\n  - {name: slow, kind: echo, replicas: 1, queue_limit: 0, delay_ms: 3000}\n");
  const auto start = std::chrono::steady_clock::now();
  auto response =
      HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", "x"}, {"deadline_ms", 300}}).dump());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(response.status, 504) << response.body;
  EXPECT_LT(elapsed, 2500ms);
  EXPECT_EQ(json::parse(response.body)["error"]["code"], "deadline_exceeded") << response.body;
  // The worker was told to cancel, so its only slot is free for the next request
  // at once (otherwise this one would wait out the first request's 3 s).
  const auto second_start = std::chrono::steady_clock::now();
  auto second = HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "y"}}).dump());
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_LT(std::chrono::steady_clock::now() - second_start, 5000ms);
}

TEST(RouterIntegration, OverloadAnswers429WithRetryAfter) {
  // One slot at the worker and one in the broker's queue: of six concurrent
  // requests two are served and four are turned away at once.
  Cluster cluster(
      "experts:\n  - {name: slow, kind: echo, replicas: 1, concurrency: 1, queue_limit: 0, delay_ms: 1500}\n",
      /*wait_ready=*/true, /*queue_limit=*/1);
  std::vector<std::thread> threads;
  std::vector<int> statuses(6);
  std::vector<std::string> retry_after(6);
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      auto response = HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "x"}}).dump());
      statuses[i] = response.status;
      retry_after[i] = response.headers["retry-after"];
    });
  }
  for (auto& t : threads) t.join();
  int served = 0, turned_away = 0;
  for (int i = 0; i < 6; ++i) {
    if (statuses[i] == 200) ++served;
    if (statuses[i] == 429) {
      ++turned_away;
      EXPECT_EQ(retry_after[i], "1");
    }
  }
  EXPECT_EQ(served, 2);
  EXPECT_EQ(turned_away, 4);
}

TEST(RouterIntegration, BadInputGetsJsonErrors) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 1}\n");
  auto bad_json = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", "{not json");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_TRUE(json::parse(bad_json.body)["error"].contains("message"));
  auto wrong_type = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", json({{"messages", "hi"}}).dump());
  EXPECT_EQ(wrong_type.status, 400);
  auto huge = HttpRequest(cluster.port(), "POST", "/v1/completions", std::string(3 << 20, 'x'));
  EXPECT_EQ(huge.status, 413);
  auto missing = HttpRequest(cluster.port(), "GET", "/v2/nothing");
  EXPECT_EQ(missing.status, 404);
  // The router is still fine.
  EXPECT_EQ(HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "ok"}}).dump()).status, 200);
}

TEST(RouterIntegration, SupervisorRestartsAKilledExpert) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 1}\n");
  auto worker_of = [&] {
    auto response = HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", "x"}}).dump());
    if (response.status != 200) return std::string();
    return json::parse(response.body)["trace"]["experts"][0]["worker"].get<std::string>();
  };
  const std::string before = worker_of();
  ASSERT_FALSE(before.empty());
  EXPECT_NE(
      HttpRequest(cluster.port(), "GET", "/metrics").body.find("thalamus_expert_restarts_total{service=\"echo\"} 0"),
      std::string::npos);
  const pid_t pid = std::stoi(before.substr(before.rfind(':') + 1));
  kill(pid, SIGKILL);
  std::string after;
  EXPECT_TRUE(WaitFor(
      [&] {
        after = worker_of();
        return !after.empty() && after != before;
      },
      20s))
      << testing::ReadFile(cluster.log());
  EXPECT_NE(
      HttpRequest(cluster.port(), "GET", "/metrics").body.find("thalamus_expert_restarts_total{service=\"echo\"} 1"),
      std::string::npos);
}

TEST(RouterIntegration, NoLiveWorkerAnswers503WithRetryAfter) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, launch: external}\n", /*wait_ready=*/false);
  EXPECT_EQ(HttpRequest(cluster.port(), "GET", "/readyz").status, 503);
  auto response = HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "x"}}).dump());
  EXPECT_EQ(response.status, 503) << response.body;
  EXPECT_EQ(response.headers["retry-after"], "1");
}

TEST(RouterIntegration, ZeroMqFrontEndAnswersQueries) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 1}\n");
  zmq::context_t context;
  zmq::socket_t client(context, zmq::socket_type::dealer);
  client.set(zmq::sockopt::rcvtimeo, 10000);
  client.connect(cluster.frontend());

  wire::QueryT query;
  query.client_request_id = 77;
  query.prompt = "alpha beta";
  query.stream = true;
  client.send(zmq::buffer(messages::EncodeBody(std::move(query))));
  std::string streamed;
  for (;;) {
    zmq::message_t frame;
    ASSERT_TRUE(client.recv(frame));
    auto envelope = messages::Decode(frame.data(), frame.size());
    ASSERT_TRUE(envelope.has_value());
    if (envelope->body.type == wire::Body::Partial) {
      EXPECT_EQ(envelope->body.AsPartial()->request_id, 77u);
      streamed += envelope->body.AsPartial()->text;
      continue;
    }
    ASSERT_EQ(envelope->body.type, wire::Body::QueryResult);
    const wire::QueryResultT& result = *envelope->body.AsQueryResult();
    EXPECT_EQ(result.client_request_id, 77u);
    EXPECT_EQ(result.status, wire::StatusCode::OK) << result.error;
    EXPECT_EQ(result.answer, "alpha beta");
    ASSERT_NE(result.trace, nullptr);
    EXPECT_EQ(result.trace->chosen, std::vector<std::string>{"echo"});
    break;
  }
  EXPECT_EQ(streamed, "alpha beta");

  client.send(zmq::str_buffer("garbage"));
  zmq::message_t frame;
  ASSERT_TRUE(client.recv(frame));
  auto envelope = messages::Decode(frame.data(), frame.size());
  ASSERT_TRUE(envelope.has_value());
  EXPECT_EQ(envelope->body.AsQueryResult()->status, wire::StatusCode::BAD_REQUEST);
}

TEST(RouterIntegration, ExpertShutsDownCleanlyOnSigterm) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, launch: external, delay_ms: 300}\n", /*wait_ready=*/false);
  Process expert = cluster.StartExpert("echo");
  ASSERT_TRUE(WaitFor([&] { return LiveWorkers(cluster.port(), "echo") == 1; }, 20s));
  // A request in hand when SIGTERM arrives is finished and delivered first.
  std::thread client([&] {
    auto response = HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "last words"}}).dump());
    EXPECT_EQ(response.status, 200) << response.body;
  });
  std::this_thread::sleep_for(100ms);
  expert.Signal(SIGTERM);
  EXPECT_EQ(expert.Wait(10s), 0);
  client.join();
  EXPECT_NE(testing::ReadFile(cluster.log()).find("disconnected: shutting down"), std::string::npos)
      << testing::ReadFile(cluster.log());
  EXPECT_EQ(LiveWorkers(cluster.port(), "echo"), 0);
}

// An expert's --health-file, read by `thalamus probe` as a container's exec
// probe would: ready once the broker took it, not ready while draining, not
// live once the process is gone.
TEST(RouterIntegration, ExpertHealthFileAnswersProbes) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, launch: external, delay_ms: 800}\n", /*wait_ready=*/false);
  const std::string health = cluster.dir() + "/echo.health";
  auto probe = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"probe", "--file", health, "--max-age-ms", "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Process(testing::BinDir() + "/thalamus", args, cluster.dir() + "/probe.log").Wait(10s);
  };
  EXPECT_EQ(probe({}), 1);  // no file yet
  Process expert = cluster.StartExpert("echo", {"--health-file", health});
  ASSERT_TRUE(WaitFor([&] { return probe({"--ready"}) == 0; }, 20s)) << testing::ReadFile(cluster.log());
  EXPECT_EQ(probe({}), 0);
  std::thread client([&] {
    auto response = HttpRequest(cluster.port(), "POST", "/v1/completions", json({{"prompt", "slow"}}).dump());
    EXPECT_EQ(response.status, 200) << response.body;
  });
  std::this_thread::sleep_for(200ms);
  expert.Signal(SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return testing::ReadFile(health) == "draining\n"; }, 5s)) << testing::ReadFile(health);
  EXPECT_EQ(probe({"--ready"}), 1);
  EXPECT_EQ(expert.Wait(10s), 0);
  client.join();
  EXPECT_TRUE(WaitFor([&] { return probe({}) == 1; }, 5s));  // nobody rewrites it: stale
  EXPECT_NE(testing::ReadFile(cluster.dir() + "/probe.log").find("ms ago"), std::string::npos);
}

TEST(RouterIntegration, RouterStopsItsExpertsCleanlyOnSigterm) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 2}\n");
  // Ready needs one live worker per service; both replicas must have joined
  // before there are two goodbyes to count.
  ASSERT_TRUE(WaitFor([&] { return LiveWorkers(cluster.port(), "echo") == 2; }, 20s));
  cluster.router().Signal(SIGTERM);
  EXPECT_EQ(cluster.router().Wait(15s), 0);
  const std::string log = testing::ReadFile(cluster.log());
  EXPECT_NE(log.find("signal 15, shutting down"), std::string::npos) << log;
  EXPECT_EQ(log.find("terminate called"), std::string::npos) << log;
  size_t goodbyes = 0;
  for (size_t at = log.find("disconnected: shutting down"); at != std::string::npos;
       at = log.find("disconnected: shutting down", at + 1)) {
    ++goodbyes;
  }
  EXPECT_EQ(goodbyes, 2u) << log;
}

// SIGTERM to the router: /readyz turns 503 and new queries get 503, while
// the queries in flight (streamed ones too) are answered before it exits 0.
TEST(RouterIntegration, RouterDrainsQueriesInFlightOnSigterm) {
  Cluster cluster("experts:\n  - {name: echo, kind: echo, replicas: 1, concurrency: 4, delay_ms: 1500}\n");
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      const bool stream = c % 2 == 0;
      const std::string text = "in flight " + std::to_string(c);
      auto response = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", Chat(text, "", stream).dump());
      const bool good =
          response.status == 200 && (stream ? response.body.find("[DONE]") != std::string::npos
                                            : json::parse(response.body)["choices"][0]["message"]["content"] == text);
      EXPECT_TRUE(good) << response.status << " " << response.body;
      if (good) ++ok;
    });
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return HttpRequest(cluster.port(), "GET", "/metrics").body.find("thalamus_in_flight{service=\"echo\"} 4") !=
               std::string::npos;
      },
      10s));
  cluster.router().Signal(SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return HttpRequest(cluster.port(), "GET", "/readyz").status == 503; }, 1s));
  const auto refused = HttpRequest(cluster.port(), "POST", "/v1/chat/completions", Chat("too late").dump());
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("shutting down"), std::string::npos) << refused.body;
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(cluster.router().Wait(15s), 0);
  EXPECT_NE(testing::ReadFile(cluster.log()).find("draining 4 quer"), std::string::npos)
      << testing::ReadFile(cluster.log());
}

// docs/heart.md and docs/volcano.md: one fact each, far enough apart that
// retrieval can only pick the right one.
void WriteTwoDocCorpus(testing::TempDir& corpus) {
  std::filesystem::create_directories(corpus.path() + "/docs");
  corpus.Write("docs/heart.md", "# Heart\n\nThe heart pumps blood through the arteries and veins of the body.\n");
  corpus.Write("docs/volcano.md", "# Volcano\n\nA volcano erupts molten lava, ash and volcanic gases.\n");
}

// A rag domain built from files on first start answers with citations, and
// the ralm plan hands its passages to a generator (an echo expert here,
// which repeats the prompt the router built).
TEST(RouterIntegration, RagDomainAnswersWithCitationsAndFeedsRalm) {
  testing::TempDir corpus;
  WriteTwoDocCorpus(corpus);
  const std::string domain = "  - {name: facts, kind: rag, index: " + corpus.path() + "/index, sources: [" +
                             corpus.path() + "/docs], top_k: 1}\n";
  {
    Cluster cluster("experts:\n" + domain);
    auto response =
        HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", "what does lava do in a volcano"}}).dump());
    ASSERT_EQ(response.status, 200) << response.body;
    json answer = json::parse(response.body);
    ASSERT_EQ(answer["citations"].size(), 1u) << response.body;
    EXPECT_EQ(answer["citations"][0]["source"], "docs/volcano.md");
    EXPECT_NE(answer["citations"][0]["text"].get<std::string>().find("molten lava"), std::string::npos);
    EXPECT_NE(answer["answer"].get<std::string>().find("molten lava"), std::string::npos);
  }
  Cluster ralm("aggregation: ralm\nexperts:\n" + domain + "  - {name: writer, kind: echo}\n");
  auto response = HttpRequest(
      ralm.port(), "POST", "/v1/query",
      json({{"prompt", "what pumps blood"}, {"experts", {"writer"}}, {"max_tokens", 500}, {"ralm_k", 1}}).dump());
  ASSERT_EQ(response.status, 200) << response.body;
  json answer = json::parse(response.body);
  EXPECT_EQ(answer["trace"]["plan"], "ralm") << response.body;
  // The generator saw the retrieved passage in its prompt.
  EXPECT_NE(answer["answer"].get<std::string>().find("pumps blood through the arteries"), std::string::npos)
      << response.body;
  ASSERT_EQ(answer["citations"].size(), 1u);
  EXPECT_EQ(answer["citations"][0]["source"], "docs/heart.md");
}

// A rag domain with sources follows them: each start re-reads changed files,
// indexes new ones and drops deleted ones before the expert serves.
TEST(RouterIntegration, RagDomainFollowsItsSourcesAcrossRestarts) {
  testing::TempDir corpus;
  WriteTwoDocCorpus(corpus);
  const std::string config = "experts:\n  - {name: facts, kind: rag, index: " + corpus.path() + "/index, sources: [" +
                             corpus.path() + "/docs], top_k: 3}\n";
  const auto sources_for = [](const Cluster& cluster, const std::string& question) {
    auto response = HttpRequest(cluster.port(), "POST", "/v1/query", json({{"prompt", question}}).dump());
    EXPECT_EQ(response.status, 200) << response.body;
    const json answer = json::parse(response.body);
    std::map<std::string, std::string> texts;
    for (const json& citation : answer["citations"]) texts[citation["source"]] = citation["text"];
    return texts;
  };
  {
    Cluster cluster(config);
    EXPECT_EQ(sources_for(cluster, "molten lava").count("docs/volcano.md"), 1u);
  }
  corpus.Write("docs/heart.md", "# Heart\n\nThe heart has four chambers: two atria and two ventricles.\n");
  std::filesystem::remove(corpus.path() + "/docs/volcano.md");
  corpus.Write("docs/glacier.md", "# Glacier\n\nA glacier is a slow river of ice that carves valleys.\n");
  Cluster cluster(config);
  const std::string log = testing::ReadFile(cluster.log());
  EXPECT_NE(log.find("files: 1 added, 1 updated, 1 removed, 0 unchanged"), std::string::npos) << log;
  const auto after = sources_for(cluster, "four chambers river of ice lava");
  EXPECT_EQ(after.count("docs/volcano.md"), 0u);
  ASSERT_EQ(after.count("docs/glacier.md"), 1u);
  ASSERT_EQ(after.count("docs/heart.md"), 1u);
  EXPECT_NE(after.at("docs/heart.md").find("four chambers"), std::string::npos) << after.at("docs/heart.md");
}

// The language-model kinds behind the router, on the tiny random checkpoints
// the fidelity tests use: greedy decoding is deterministic, so a streamed
// answer must equal the unstreamed one token for token.
TEST(RouterIntegration, MambaAndTransformerExpertsAnswerAndStream) {
  const std::string models = std::string(THALAMUS_TEST_DATA_DIR) + "/models";
  Cluster cluster(
      "experts:\n"
      "  - {name: mamba, kind: mamba, model: " +
      models +
      "/mamba-tiny-hf, max_batch: 2}\n"
      "  - {name: neox, kind: transformer, model: " +
      models + "/gpt_neox-tiny-parallel, max_context: 64}\n");
  for (const std::string model : {"mamba", "neox"}) {
    json request = {{"model", model}, {"prompt", "The quick brown fox"}, {"max_tokens", 8}, {"temperature", 0}};
    auto plain = HttpRequest(cluster.port(), "POST", "/v1/completions", request.dump());
    ASSERT_EQ(plain.status, 200) << model << ": " << plain.body;
    json answer = json::parse(plain.body);
    EXPECT_GT(answer["usage"]["prompt_tokens"].get<int>(), 0) << plain.body;
    EXPECT_LE(answer["usage"]["completion_tokens"].get<int>(), 8) << plain.body;
    request["stream"] = true;
    auto streamed = HttpRequest(cluster.port(), "POST", "/v1/completions", request.dump());
    ASSERT_EQ(streamed.status, 200) << model << ": " << streamed.body;
    auto events = testing::SseData(streamed.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    for (size_t i = 0; i + 1 < events.size(); ++i) {
      json chunk = json::parse(events[i]);
      if (chunk.contains("choices") && !chunk["choices"].empty()) text += chunk["choices"][0].value("text", "");
    }
    EXPECT_EQ(text, answer["choices"][0]["text"].get<std::string>()) << model;
  }
  // Over the transformer's configured context (64 tokens): a clear 400, not a crash.
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "word ";
  auto too_long = HttpRequest(cluster.port(), "POST", "/v1/completions",
                              json({{"model", "neox"}, {"prompt", long_prompt}, {"max_tokens", 4}}).dump());
  EXPECT_EQ(too_long.status, 400) << too_long.body;
}

TEST(RouterIntegration, BadConfigExitsNamingFileLineAndKey) {
  testing::TempDir dir;
  const std::string config = dir.Write("bad.yaml", "experts:\n  - name: a\n    kind: echo\n    replicas: many\n");
  Process router(testing::BinDir() + "/thalamus-router", {"--config", config}, dir.path() + "/log.txt");
  EXPECT_EQ(router.Wait(10s), 2);
  EXPECT_NE(testing::ReadFile(dir.path() + "/log.txt").find(config + ":4:15: experts[0].replicas: must be an integer"),
            std::string::npos);
}

}  // namespace
}  // namespace thalamus
