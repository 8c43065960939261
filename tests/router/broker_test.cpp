// Broker: in-process, with fake workers (DEALER sockets on the test thread)
// talking to the broker over inproc:// on a real EventLoop. No processes, no
// TCP; each test takes milliseconds.
#include "router/broker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "security/zap_handler.h"
#include "tests/support/frames.h"
#include "tests/support/process.h"

namespace thalamus::router {
namespace {

using namespace std::chrono_literals;

std::string NextEndpoint() {
  static std::atomic<int> counter{0};
  return "inproc://broker-test-" + std::to_string(counter++);
}

config::Config TestConfig() {
  config::Config config;
  config.broker.backend = NextEndpoint();
  config.broker.frontend = "";
  config.broker.heartbeat_ms = 1000;  // no expiry during a test unless it asks for one
  config.broker.liveness = 3;
  config.broker.queue_limit = 8;
  config.broker.retry_after_ms = 1500;
  config::ExpertConfig expert;
  expert.name = "svc";
  expert.kind = config::ExpertKind::kEcho;
  config.experts.push_back(expert);
  return config;
}

// A worker as the expert runtime would be, driven by the test thread.
class FakeWorker {
 public:
  // `configure` runs before the socket connects (CURVE keys).
  FakeWorker(EventLoop& loop, const std::string& endpoint, std::string name,
             const std::function<void(zmq::socket_t&)>& configure = {})
      : name_(std::move(name)), socket_(loop.context(), zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::routing_id, name_);
    if (configure) configure(socket_);
    socket_.connect(endpoint);
  }

  void Ready(uint32_t capacity = 1, const std::string& service = "svc") {
    wire::ReadyT ready;
    ready.service = service;
    ready.kind = "echo";
    ready.capacity = capacity;
    ready.hostname = name_;
    ready.pid = 1;
    Send(messages::EncodeBody(std::move(ready)));
  }
  void Send(const std::string& bytes) { socket_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  void Answer(uint64_t request_id, const std::string& text, wire::StatusCode status = wire::StatusCode::OK) {
    wire::ExpertReplyT reply;
    reply.request_id = request_id;
    reply.status = status;
    reply.text = text;
    Send(messages::EncodeBody(std::move(reply)));
  }
  void Stream(uint64_t request_id, const std::string& text) {
    wire::PartialT partial;
    partial.request_id = request_id;
    partial.text = text;
    Send(messages::EncodeBody(std::move(partial)));
  }
  // What a worker sends on SIGTERM: a heartbeat saying it is leaving.
  void Drain() {
    wire::HeartbeatT beat;
    beat.draining = true;
    Send(messages::EncodeBody(std::move(beat)));
  }
  void Disconnect() {
    wire::DisconnectT disconnect;
    disconnect.reason = "test";
    Send(messages::EncodeBody(std::move(disconnect)));
  }

  // The next message from the broker other than a heartbeat, or nullopt.
  std::optional<wire::EnvelopeT> Receive(std::chrono::milliseconds timeout = 1s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 10ms);
      zmq::message_t message;
      if (!socket_.recv(message, zmq::recv_flags::dontwait)) continue;
      auto envelope = messages::Decode(message.data(), message.size());
      if (envelope && envelope->body.type != wire::Body::Heartbeat) return envelope;
    }
    return std::nullopt;
  }
  // The next request sent to this worker; fails the test if none comes.
  wire::ExpertRequestT NextRequest() {
    auto envelope = Receive();
    EXPECT_TRUE(envelope && envelope->body.type == wire::Body::ExpertRequest) << name_ << " got no request";
    if (!envelope || envelope->body.type != wire::Body::ExpertRequest) return {};
    return *envelope->body.AsExpertRequest();
  }
  // The reason of the next Disconnect; "" if none comes.
  std::string NextDisconnect() {
    auto envelope = Receive();
    EXPECT_TRUE(envelope && envelope->body.type == wire::Body::Disconnect) << name_ << " got no disconnect";
    return envelope && envelope->body.type == wire::Body::Disconnect ? envelope->body.AsDisconnect()->reason : "";
  }
  // The request id of the next Cancel; 0 if none comes.
  uint64_t NextCancel() {
    auto envelope = Receive();
    EXPECT_TRUE(envelope && envelope->body.type == wire::Body::Cancel) << name_ << " got no cancel";
    return envelope && envelope->body.type == wire::Body::Cancel ? envelope->body.AsCancel()->request_id : 0;
  }
  bool GetsNothingFor(std::chrono::milliseconds window) { return !Receive(window).has_value(); }

 private:
  std::string name_;
  zmq::socket_t socket_;
};

// What a dispatched request got back, filled on the loop thread.
struct Result {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  wire::ExpertReplyT reply;
  DispatchOutcome outcome;
  int partials = 0;

  bool Wait(std::chrono::milliseconds timeout = 2s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [this] { return done; });
  }
  bool Done() {
    std::lock_guard lock(mu);
    return done;
  }
};

// "thalamus_invalid_frames_total{endpoint=\"backend\"} 1"-style lines.
bool HasSeries(const Metrics& metrics, const std::string& line) {
  return metrics.Serialize().find(line) != std::string::npos;
}

class BrokerTest : public ::testing::Test {
 protected:
  void Start(config::Config config = TestConfig()) {
    config_ = std::move(config);
    broker_ = std::make_unique<Broker>(config_, loop_, metrics_);
    loop_.Start();
  }
  void TearDown() override { loop_.Stop(); }
  void ExpectASecondWorkerRefused(config::Config config, const std::string& reason);

  std::unique_ptr<FakeWorker> Worker(const std::string& name) {
    return std::make_unique<FakeWorker>(loop_, broker_->endpoint(), name);
  }
  // A worker of svc that said READY, once the broker counts it.
  std::unique_ptr<FakeWorker> Join(const std::string& name, uint32_t capacity) {
    int before = 0;
    for (const ServiceInfo& info : broker_->Services()) {
      if (info.name == "svc") before = info.live_workers;
    }
    auto worker = Worker(name);
    worker->Ready(capacity);
    EXPECT_TRUE(WaitLive(before + 1)) << name << " did not join";
    return worker;
  }
  // Workers a and b of svc, a joined first.
  std::pair<std::unique_ptr<FakeWorker>, std::unique_ptr<FakeWorker>> JoinTwo(uint32_t capacity) {
    auto a = Join("a", capacity);
    return {std::move(a), Join("b", capacity)};
  }
  // Waits until the broker's snapshot shows `count` live workers for svc.
  bool WaitLive(int count, const std::string& service = "svc") {
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < until) {
      for (const ServiceInfo& info : broker_->Services()) {
        if (info.name == service && info.live_workers == count) return true;
      }
      std::this_thread::sleep_for(1ms);
    }
    return false;
  }
  std::shared_ptr<Result> Dispatch(const std::string& service = "svc", std::chrono::milliseconds deadline = 5s,
                                   uint64_t* id = nullptr) {
    auto result = std::make_shared<Result>();
    loop_.Call([&] {
      DispatchCallbacks callbacks;
      callbacks.on_partial = [result](const wire::PartialT&) {
        std::lock_guard lock(result->mu);
        ++result->partials;
      };
      callbacks.on_reply = [result](wire::ExpertReplyT reply, const DispatchOutcome& outcome) {
        std::lock_guard lock(result->mu);
        EXPECT_FALSE(result->done) << "on_reply ran twice";
        result->reply = std::move(reply);
        result->outcome = outcome;
        result->done = true;
        result->cv.notify_all();
      };
      wire::ExpertRequestT request;
      request.prompt = "hello";
      const uint64_t assigned =
          broker_->Dispatch(service, std::move(request), EventLoop::Clock::now() + deadline, std::move(callbacks));
      if (id) *id = assigned;
    });
    return result;
  }

  config::Config config_;
  EventLoop loop_;
  Metrics metrics_;
  std::unique_ptr<Broker> broker_;
};

TEST_F(BrokerTest, SendsToTheLeastLoadedWorkerAndBreaksTiesByTheOldestDispatch) {
  Start();
  auto [a, b] = JoinTwo(4);

  auto first = Dispatch();  // both idle: a (joined first)
  const auto r1 = a->NextRequest();
  auto second = Dispatch();  // a has one in flight: b
  const auto r2 = b->NextRequest();
  auto third = Dispatch();  // one each: a, sent to longest ago
  const auto r3 = a->NextRequest();
  b->Answer(r2.request_id, "two");
  ASSERT_TRUE(second->Wait());
  EXPECT_EQ(second->reply.text, "two");
  EXPECT_EQ(second->outcome.worker, "b:1");
  EXPECT_EQ(second->outcome.attempts, 1u);
  auto fourth = Dispatch();  // a has two, b none: b
  const auto r4 = b->NextRequest();
  EXPECT_TRUE(a->GetsNothingFor(30ms));
  EXPECT_NE(r1.request_id, r3.request_id);
  EXPECT_EQ(r4.service, "svc");
}

TEST_F(BrokerTest, RetriesOnceOnAnotherWorkerWhenAWorkerDies) {
  Start();
  auto [a, b] = JoinTwo(1);
  auto result = Dispatch();
  const auto on_a = a->NextRequest();
  a->Disconnect();
  const auto on_b = b->NextRequest();
  EXPECT_EQ(on_b.request_id, on_a.request_id);
  b->Answer(on_b.request_id, "from b");
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.status, wire::StatusCode::OK);
  EXPECT_EQ(result->reply.text, "from b");
  EXPECT_EQ(result->outcome.attempts, 2u);
  EXPECT_EQ(result->outcome.worker, "b:1");
}

// A draining worker gets nothing new and no longer counts as live, but its
// answer to what it holds still completes the request; its requests that
// were cut short by its DISCONNECT go to another worker.
TEST_F(BrokerTest, ADrainingWorkerGetsNothingNewButItsAnswersCount) {
  Start();
  auto [a, b] = JoinTwo(2);
  auto held = Dispatch();
  const auto on_a = a->NextRequest();
  auto cut_short = Dispatch();
  const auto on_b = b->NextRequest();
  b->Drain();
  ASSERT_TRUE(WaitLive(1));
  auto next = Dispatch();  // b has one in flight, a one: still a, as b is leaving
  const auto next_on_a = a->NextRequest();
  EXPECT_TRUE(b->GetsNothingFor(30ms));
  b->Stream(on_b.request_id, "partial");  // a draining worker's stream still gets through
  a->Answer(on_a.request_id, "from a");
  ASSERT_TRUE(held->Wait());
  EXPECT_EQ(held->reply.text, "from a");

  a->Drain();
  ASSERT_TRUE(WaitLive(0));
  auto none = Dispatch();
  ASSERT_TRUE(none->Wait());
  EXPECT_EQ(none->reply.status, wire::StatusCode::UNAVAILABLE);
  EXPECT_FALSE(broker_->HasLiveWorker("svc"));
  a->Answer(next_on_a.request_id, "drained");
  ASSERT_TRUE(next->Wait());
  EXPECT_EQ(next->reply.text, "drained");
  b->Disconnect();  // it had streamed: not retried, failed
  ASSERT_TRUE(cut_short->Wait());
  EXPECT_EQ(cut_short->reply.status, wire::StatusCode::EXPERT_FAILED);
}

TEST_F(BrokerTest, DoesNotRetryOnceTheAnswerStartedStreaming) {
  Start();
  auto [a, b] = JoinTwo(1);
  auto result = Dispatch();
  const auto request = a->NextRequest();
  a->Stream(request.request_id, "par");
  a->Disconnect();
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.status, wire::StatusCode::EXPERT_FAILED);
  EXPECT_NE(result->reply.error.find("after streaming began"), std::string::npos) << result->reply.error;
  EXPECT_EQ(result->partials, 1);
  EXPECT_EQ(result->outcome.attempts, 1u);
  EXPECT_TRUE(b->GetsNothingFor(30ms));
}

TEST_F(BrokerTest, ExpiresTheDeadlineAndCancelsTheWorkersRequest) {
  Start();
  auto a = Join("a", 1);
  auto result = Dispatch("svc", 40ms);
  const auto request = a->NextRequest();
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.status, wire::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(messages::HttpStatus(result->reply.status), 504);
  EXPECT_EQ(a->NextCancel(), request.request_id);
  // A late answer is dropped: on_reply ran once (Result checks).
  a->Answer(request.request_id, "late");
  EXPECT_TRUE(a->GetsNothingFor(30ms));
}

TEST_F(BrokerTest, AFullQueueAnswersOverloadedWithRetryAfter) {
  config::Config config = TestConfig();
  config.broker.queue_limit = 1;
  Start(config);
  auto a = Join("a", 1);
  auto working = Dispatch();
  const auto request = a->NextRequest();
  auto waiting = Dispatch();
  auto refused = Dispatch();
  ASSERT_TRUE(refused->Wait());
  EXPECT_EQ(refused->reply.status, wire::StatusCode::OVERLOADED);
  EXPECT_EQ(messages::HttpStatus(refused->reply.status), 429);
  EXPECT_EQ(refused->outcome.retry_after_ms, 1500u);
  EXPECT_FALSE(waiting->Done());
  a->Answer(request.request_id, "one");
  const auto next = a->NextRequest();  // the waiting one moves up
  a->Answer(next.request_id, "two");
  ASSERT_TRUE(waiting->Wait());
  EXPECT_EQ(waiting->reply.text, "two");
}

TEST_F(BrokerTest, NoLiveWorkerIsUnavailableAndAnUnknownServiceNotFound) {
  Start();
  auto none = Dispatch("svc");
  ASSERT_TRUE(none->Wait());
  EXPECT_EQ(none->reply.status, wire::StatusCode::UNAVAILABLE);
  EXPECT_EQ(messages::HttpStatus(none->reply.status), 503);
  EXPECT_EQ(none->outcome.retry_after_ms, 1500u);
  auto unknown = Dispatch("nobody");
  ASSERT_TRUE(unknown->Wait());
  EXPECT_EQ(unknown->reply.status, wire::StatusCode::NOT_FOUND);
  EXPECT_FALSE(broker_->HasLiveWorker("svc"));
}

TEST_F(BrokerTest, AWorkerThatMissesHeartbeatsIsDroppedAndItsRequestFails) {
  config::Config config = TestConfig();
  config.broker.heartbeat_ms = 20;
  config.broker.liveness = 2;
  Start(config);
  auto a = Join("a", 1);
  auto result = Dispatch();
  (void)a->NextRequest();
  // Silent from now on: gone after about liveness x heartbeat.
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.status, wire::StatusCode::UNAVAILABLE);
  EXPECT_NE(result->reply.error.find("missed heartbeats"), std::string::npos) << result->reply.error;
  EXPECT_TRUE(WaitLive(0));
}

// A worker that announces itself again (a restart behind the same identity)
// has lost what it held: it counts once, and its requests go to another
// worker, or fail when there is none.
TEST_F(BrokerTest, ReadyTwiceIsOneWorkerWhoseOldRequestsMoveOn) {
  Start();
  auto a = Join("a", 1);
  auto lost = Dispatch();
  (void)a->NextRequest();
  a->Ready(1);
  ASSERT_TRUE(lost->Wait());
  EXPECT_EQ(lost->reply.status, wire::StatusCode::UNAVAILABLE);
  EXPECT_NE(lost->reply.error.find("announced itself again"), std::string::npos) << lost->reply.error;
  ASSERT_TRUE(WaitLive(1));

  auto b = Join("b", 1);
  auto moved = Dispatch();
  const auto on_a = a->NextRequest();
  a->Ready(1);
  const auto on_b = b->NextRequest();
  EXPECT_EQ(on_b.request_id, on_a.request_id);
  b->Answer(on_b.request_id, "ok");
  ASSERT_TRUE(moved->Wait());
  EXPECT_EQ(moved->reply.text, "ok");
  EXPECT_EQ(moved->outcome.attempts, 2u);
  EXPECT_TRUE(WaitLive(2));
}

TEST_F(BrokerTest, FramesForARequestTheWorkerDoesNotHoldAreIgnored) {
  Start();
  auto [a, b] = JoinTwo(1);
  uint64_t id = 0;
  auto result = Dispatch("svc", 5s, &id);
  EXPECT_EQ(a->NextRequest().request_id, id);
  b->Stream(id, "forged");
  b->Answer(id, "forged");
  EXPECT_FALSE(result->Wait(50ms));
  a->Answer(id, "real");
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.text, "real");
  EXPECT_EQ(result->partials, 0);

  // An unregistered peer is told to announce itself, and its frames change nothing.
  auto stranger = Worker("stranger");
  stranger->Answer(id, "stranger");
  EXPECT_NE(stranger->NextDisconnect().find("send READY"), std::string::npos);
}

TEST_F(BrokerTest, CancelAnswersCancelledOnceAndTellsTheWorker) {
  Start();
  auto a = Join("a", 1);
  uint64_t id = 0;
  auto result = Dispatch("svc", 5s, &id);
  const auto request = a->NextRequest();
  EXPECT_EQ(request.request_id, id);
  loop_.Call([&] { broker_->Cancel(id); });
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.status, wire::StatusCode::CANCELLED);
  EXPECT_EQ(a->NextCancel(), id);
  loop_.Call([&] { broker_->Cancel(id); });  // a second Cancel does nothing
}

TEST_F(BrokerTest, RefusesReadyForAServiceTheConfigDoesNotName) {
  Start();
  auto stranger = Worker("stranger");
  stranger->Ready(1, "phantom");
  EXPECT_NE(stranger->NextDisconnect().find("refused: no service named 'phantom'"), std::string::npos);
  ASSERT_EQ(broker_->Services().size(), 1u);  // no phantom service in /v1/models, /readyz or /metrics
  EXPECT_TRUE(HasSeries(metrics_, "thalamus_refused_workers_total{service=\"\"} 1"));
}

// With a cap of one worker, a second READY is refused with `reason`; the
// first worker announcing itself again takes no new slot.
void BrokerTest::ExpectASecondWorkerRefused(config::Config config, const std::string& reason) {
  Start(std::move(config));
  auto a = Join("a", 1);
  auto b = Worker("b");
  b->Ready(1);
  EXPECT_NE(b->NextDisconnect().find(reason), std::string::npos);
  a->Ready(1);
  EXPECT_TRUE(a->GetsNothingFor(30ms));
  EXPECT_TRUE(WaitLive(1));
  EXPECT_TRUE(HasSeries(metrics_, "thalamus_refused_workers_total{service=\"svc\"} 1"));
}

TEST_F(BrokerTest, CapsWorkersPerService) {
  config::Config config = TestConfig();
  config.broker.max_workers_per_service = 1;
  ExpectASecondWorkerRefused(config, "service 'svc' has its most workers (broker.max_workers_per_service 1)");
}

TEST_F(BrokerTest, CapsWorkersInAll) {
  config::Config config = TestConfig();
  config.broker.max_workers = 1;
  ExpectASecondWorkerRefused(config, "the broker has its most workers (broker.max_workers 1)");
}

// A bodyless frame (the 20 bytes that crashed the router) or one workers do
// not send drops the worker that sent it; its request fails over as when a
// worker dies, and the service keeps serving with the others.
TEST_F(BrokerTest, AnInvalidFrameDropsTheWorkerThatSentIt) {
  Start();
  auto [a, b] = JoinTwo(1);
  auto result = Dispatch();
  const auto request = a->NextRequest();
  a->Send(testing::BodylessEnvelope(wire::Body::ExpertReply));
  const auto moved = b->NextRequest();
  EXPECT_EQ(moved.request_id, request.request_id);
  EXPECT_TRUE(WaitLive(1));
  b->Answer(moved.request_id, "from b");
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.text, "from b");

  wire::QueryT query;  // a client's message, not a worker's
  query.prompt = "x";
  b->Send(messages::EncodeBody(std::move(query)));
  EXPECT_TRUE(WaitLive(0));
  EXPECT_TRUE(HasSeries(metrics_, "thalamus_invalid_frames_total{endpoint=\"backend\"} 2"));

  // Every bodyless kind from an unregistered peer is dropped, and the broker still serves.
  auto stranger = Worker("stranger");
  for (auto type : wire::EnumValuesBody()) stranger->Send(testing::BodylessEnvelope(type));
  auto c = Join("c", 1);
  auto served = Dispatch();
  c->Answer(c->NextRequest().request_id, "still serving");
  ASSERT_TRUE(served->Wait());
  EXPECT_EQ(served->reply.text, "still serving");
}

// CURVE on the backend: only the expert whose key is in the authorized folder
// is served; one with an unknown key and a plaintext one never see a request.
TEST(BrokerCurveTest, OnlyAuthorizedExpertsJoin) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/experts");
  security::WriteKeyPair(security::GenerateKeyPair(), dir.path() + "/router");
  const security::KeyPair good = security::GenerateKeyPair();
  security::WriteKeyPair(good, dir.path() + "/experts/good");
  config::Config config = TestConfig();
  config.broker.backend = "tcp://127.0.0.1:*";
  config.broker.curve = {true, dir.path() + "/router.key", dir.path() + "/router.pub", dir.path() + "/experts", ""};
  const std::string server_key = security::ReadPublicKey(config.broker.curve.router_public_key);
  EventLoop loop;
  Metrics metrics;
  security::ZapHandler zap(loop.context(), {{"backend", config.broker.curve.authorized_keys}},
                           [&](const std::string& domain) { metrics.CountAuthFailure(domain); });
  Broker broker(config, loop, metrics);
  loop.Start();
  const auto with_keys = [&](const security::KeyPair& keys) {
    return [&, keys](zmq::socket_t& socket) { security::MakeCurveClient(socket, keys, server_key); };
  };
  FakeWorker intruder(loop, broker.endpoint(), "intruder", with_keys(security::GenerateKeyPair()));
  FakeWorker plaintext(loop, broker.endpoint(), "plaintext");
  intruder.Ready(8);
  plaintext.Ready(8);
  FakeWorker expert(loop, broker.endpoint(), "good", with_keys(good));
  expert.Ready(1);
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (!broker.HasLiveWorker("svc") && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(broker.HasLiveWorker("svc"));
  auto result = std::make_shared<Result>();
  loop.Call([&] {
    DispatchCallbacks callbacks;
    callbacks.on_reply = [result](wire::ExpertReplyT reply, const DispatchOutcome&) {
      std::lock_guard lock(result->mu);
      result->reply = std::move(reply);
      result->done = true;
      result->cv.notify_all();
    };
    wire::ExpertRequestT request;
    request.prompt = "secret";
    broker.Dispatch("svc", std::move(request), EventLoop::Clock::now() + 5s, std::move(callbacks));
  });
  expert.Answer(expert.NextRequest().request_id, "served");
  ASSERT_TRUE(result->Wait());
  EXPECT_EQ(result->reply.text, "served");
  EXPECT_TRUE(intruder.GetsNothingFor(50ms));
  EXPECT_TRUE(plaintext.GetsNothingFor(50ms));
  EXPECT_EQ(broker.Services().at(0).live_workers, 1);
  EXPECT_NE(metrics.Serialize().find("thalamus_auth_failures_total{endpoint=\"backend\"} 1"), std::string::npos);
  loop.Stop();
}

}  // namespace
}  // namespace thalamus::router
