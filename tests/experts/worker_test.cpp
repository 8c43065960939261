// The worker runtime against a ROUTER socket playing the broker, frame by frame.
#include "experts/worker.h"

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "tests/support/frames.h"

namespace thalamus::experts {
namespace {

class FakeBroker {
 public:
  FakeBroker() : socket_(context_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // The next envelope of `type` (others, e.g. heartbeats, are skipped);
  // throws after 10 s, heartbeats or not.
  wire::EnvelopeT Next(wire::Body type) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < give_up) {
      zmq::message_t identity, payload;
      if (!socket_.recv(identity)) throw std::runtime_error("timeout");
      (void)socket_.recv(payload);
      identity_ = identity.to_string();
      auto envelope = messages::Decode(payload.data(), payload.size());
      if (!envelope) throw std::runtime_error("worker sent an invalid frame");
      if (envelope->body.type == wire::Body::ExpertReply) ++replies_seen_;
      if (envelope->body.type == type) return std::move(*envelope);
    }
    throw std::runtime_error("timeout");
  }
  void Send(const std::string& bytes) {
    socket_.send(zmq::buffer(identity_), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(bytes));
  }

  int replies_seen() const { return replies_seen_; }

 private:
  int replies_seen_ = 0;
  zmq::context_t context_;
  zmq::socket_t socket_;
  std::string endpoint_;
  std::string identity_;
};

wire::ExpertRequestT Request(uint64_t id, const std::string& prompt, bool stream = false) {
  wire::ExpertRequestT request;
  request.request_id = id;
  request.service = "echo";
  request.prompt = prompt;
  request.stream = stream;
  return request;
}

// Serves "quick" inline; anything else blocks in Serve until Release().
class GateExpert : public Expert {
 public:
  std::string Model() const override { return "gate"; }
  bool ServesInline(const wire::ExpertRequestT& request) const override { return request.prompt == "quick"; }
  wire::ExpertReplyT Serve(Job& job) override {
    if (job.request().prompt != "quick") {
      std::unique_lock lock(mutex_);
      // Bounded, so that a failing test ends rather than hangs in TearDown.
      released_.wait_for(lock, std::chrono::seconds(10), [&] { return open_; });
    }
    wire::ExpertReplyT reply;
    reply.text = job.request().prompt;
    return reply;
  }
  void Release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    released_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool open_ = false;
};

class WorkerTest : public ::testing::Test {
 protected:
  void Start(int delay_ms = 0, int concurrency = 1, int queue_limit = 0) {
    config::ExpertConfig expert;
    expert.name = "echo";
    expert.kind = config::ExpertKind::kEcho;
    expert.delay_ms = delay_ms;
    Start(MakeExpert(expert), concurrency, queue_limit);
  }
  void Start(std::unique_ptr<Expert> expert, int concurrency = 1, int queue_limit = 0) {
    WorkerOptions options;
    options.backend = broker_.endpoint();
    options.service = "echo";
    options.kind = "echo";
    options.concurrency = concurrency;
    options.queue_limit = queue_limit;
    options.heartbeat_ms = heartbeat_ms_;
    options.drain_grace_ms = drain_grace_ms_;
    options.liveness = liveness_;
    options.health_file = health_file_;
    worker_ = std::make_unique<Worker>(options, std::move(expert));
    thread_ = std::thread([this] { worker_->Run(stop_); });
  }
  // Heartbeats until the one that says draining.
  wire::EnvelopeT NextDrainingHeartbeat() {
    for (;;) {
      wire::EnvelopeT beat = broker_.Next(wire::Body::Heartbeat);
      if (beat.body.AsHeartbeat()->draining) return beat;
    }
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  int heartbeat_ms_ = 50;
  int drain_grace_ms_ = 30000;
  int liveness_ = 3;
  std::string health_file_;
  FakeBroker broker_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

TEST_F(WorkerTest, AnnouncesItselfAndAnswers) {
  Start();
  wire::EnvelopeT ready = broker_.Next(wire::Body::Ready);
  EXPECT_EQ(ready.body.AsReady()->service, "echo");
  EXPECT_EQ(ready.body.AsReady()->capacity, 1u);
  EXPECT_EQ(ready.body.AsReady()->pid, static_cast<uint32_t>(getpid()));
  broker_.Send(messages::EncodeBody(Request(9, "hello there")));
  wire::EnvelopeT reply = broker_.Next(wire::Body::ExpertReply);
  EXPECT_EQ(reply.body.AsExpertReply()->request_id, 9u);
  EXPECT_EQ(reply.body.AsExpertReply()->status, wire::StatusCode::OK);
  EXPECT_EQ(reply.body.AsExpertReply()->text, "hello there");
}

TEST_F(WorkerTest, StreamsPartialsBeforeTheReply) {
  Start();
  broker_.Next(wire::Body::Ready);
  broker_.Send(messages::EncodeBody(Request(1, "a b c", /*stream=*/true)));
  std::string streamed;
  for (int i = 0; i < 3; ++i) {
    wire::EnvelopeT partial = broker_.Next(wire::Body::Partial);
    EXPECT_EQ(partial.body.AsPartial()->seq, static_cast<uint32_t>(i));
    streamed += partial.body.AsPartial()->text;
  }
  EXPECT_EQ(streamed, "a b c");
  EXPECT_EQ(broker_.Next(wire::Body::ExpertReply).body.AsExpertReply()->text, "a b c");
}

TEST_F(WorkerTest, HeartbeatsAndIgnoresGarbage) {
  Start();
  broker_.Next(wire::Body::Ready);
  broker_.Send("definitely not a flatbuffer");
  // Bodyless frames of the kinds a worker reads (they crashed it before
  // messages::CheckBody), and one a worker does not read.
  broker_.Send(testing::BodylessEnvelope(wire::Body::ExpertRequest));
  broker_.Send(testing::BodylessEnvelope(wire::Body::Cancel));
  wire::ReadyT ready;
  ready.service = "x";
  broker_.Send(messages::EncodeBody(std::move(ready)));
  broker_.Next(wire::Body::Heartbeat);
  broker_.Send(messages::EncodeBody(Request(2, "still alive")));
  EXPECT_EQ(broker_.Next(wire::Body::ExpertReply).body.AsExpertReply()->text, "still alive");
  EXPECT_EQ(worker_->invalid_frames(), 4u);
}

// Heartbeats go out while a request that is not served inline runs, and
// inline requests are still answered meanwhile (the issue: a 100 MB prompt to
// an inline echo held the socket thread until the broker dropped the worker).
TEST_F(WorkerTest, HeartbeatsWhileALongRequestRuns) {
  auto owned = std::make_unique<GateExpert>();
  GateExpert* expert = owned.get();
  Start(std::move(owned));
  broker_.Next(wire::Body::Ready);
  broker_.Send(messages::EncodeBody(Request(1, "slow")));
  for (int i = 0; i < 5; ++i) {  // 250 ms, longer than the worker's 150 ms of tolerated silence
    wire::EnvelopeT beat = broker_.Next(wire::Body::Heartbeat);
    EXPECT_EQ(beat.body.AsHeartbeat()->in_flight, 1u);
    broker_.Send(messages::EncodeBody(wire::HeartbeatT{}));  // as the broker does: the worker stays connected
  }
  broker_.Send(messages::EncodeBody(Request(2, "quick")));
  EXPECT_EQ(broker_.Next(wire::Body::ExpertReply).body.AsExpertReply()->request_id, 2u);
  expert->Release();
  EXPECT_EQ(broker_.Next(wire::Body::ExpertReply).body.AsExpertReply()->text, "slow");
}

TEST(EchoExpertTest, ServesSmallPromptsInlineAndLargeOnesOnAComputeThread) {
  config::ExpertConfig instant;
  instant.name = "echo";
  instant.kind = config::ExpertKind::kEcho;
  auto echo = MakeExpert(instant);
  EXPECT_TRUE(echo->ServesInline(Request(1, "hello")));
  EXPECT_FALSE(echo->ServesInline(Request(2, std::string(1 << 20, 'x'))));
  wire::ExpertRequestT chat = Request(3, "");
  chat.messages.push_back(std::make_unique<wire::ChatMessageT>());
  chat.messages.back()->role = "user";
  chat.messages.back()->content = std::string(1 << 20, 'y');
  EXPECT_FALSE(echo->ServesInline(chat));
  config::ExpertConfig slow = instant;
  slow.delay_ms = 10;
  EXPECT_FALSE(MakeExpert(slow)->ServesInline(Request(4, "hello")));
}

TEST_F(WorkerTest, AnswersOverloadedBeyondItsQueue) {
  Start(/*delay_ms=*/500, /*concurrency=*/1, /*queue_limit=*/0);
  broker_.Next(wire::Body::Ready);
  broker_.Send(messages::EncodeBody(Request(1, "slow")));
  broker_.Send(messages::EncodeBody(Request(2, "too many")));
  wire::EnvelopeT first = broker_.Next(wire::Body::ExpertReply);
  EXPECT_EQ(first.body.AsExpertReply()->request_id, 2u);
  EXPECT_EQ(first.body.AsExpertReply()->status, wire::StatusCode::OVERLOADED);
  EXPECT_EQ(broker_.Next(wire::Body::ExpertReply).body.AsExpertReply()->request_id, 1u);
}

TEST_F(WorkerTest, CancelStopsWorkEarlyAndSendsNoReply) {
  Start(/*delay_ms=*/2000);
  broker_.Next(wire::Body::Ready);
  broker_.Send(messages::EncodeBody(Request(5, "never mind")));
  wire::CancelT cancel;
  cancel.request_id = 5;
  broker_.Send(messages::EncodeBody(std::move(cancel)));
  const auto start = std::chrono::steady_clock::now();
  broker_.Send(messages::EncodeBody(Request(6, "next")));
  wire::EnvelopeT reply = broker_.Next(wire::Body::ExpertReply);
  // Request 6 waited only for the cancelled one to notice, not for its 2 s.
  EXPECT_EQ(reply.body.AsExpertReply()->request_id, 6u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(3500));
}

// SIGTERM (stop) drains: a draining heartbeat first, then the answer to what
// was in hand and to what arrived meanwhile, then DISCONNECT.
TEST_F(WorkerTest, DrainsOnStopAnsweringWhatItHolds) {
  heartbeat_ms_ = 100;  // `stop` is seen within one (a real SIGTERM also interrupts the wait)
  liveness_ = 50;
  Start(/*delay_ms=*/800, /*concurrency=*/2);
  broker_.Next(wire::Body::Ready);
  broker_.Send(messages::EncodeBody(Request(1, "in hand")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop_ = true;
  wire::EnvelopeT beat = NextDrainingHeartbeat();
  EXPECT_EQ(beat.body.AsHeartbeat()->in_flight, 1u);
  broker_.Send(messages::EncodeBody(Request(2, "sent before the broker heard")));
  std::set<uint64_t> answered;
  for (int i = 0; i < 2; ++i) {
    wire::EnvelopeT reply = broker_.Next(wire::Body::ExpertReply);
    EXPECT_EQ(reply.body.AsExpertReply()->status, wire::StatusCode::OK);
    answered.insert(reply.body.AsExpertReply()->request_id);
  }
  EXPECT_EQ(answered, (std::set<uint64_t>{1, 2}));
  EXPECT_EQ(broker_.Next(wire::Body::Disconnect).body.AsDisconnect()->reason, "shutting down");
  thread_.join();
}

// What is still running when the grace period ends is cancelled, not
// answered: the broker retries it elsewhere after the DISCONNECT.
TEST_F(WorkerTest, DrainGiveUpAfterItsGracePeriod) {
  heartbeat_ms_ = 100;
  liveness_ = 50;  // this broker never heartbeats: do not take its silence for an exit
  drain_grace_ms_ = 200;
  Start(/*delay_ms=*/5000);
  broker_.Next(wire::Body::Ready);
  broker_.Send(messages::EncodeBody(Request(1, "too slow")));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto start = std::chrono::steady_clock::now();
  stop_ = true;
  NextDrainingHeartbeat();
  // Next skips frames of other kinds: an ExpertReply here would be found by the check below.
  wire::EnvelopeT goodbye = broker_.Next(wire::Body::Disconnect);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2000));
  thread_.join();
  EXPECT_EQ(broker_.replies_seen(), 0);
}

// The health file says "connecting" until the broker heartbeats to the
// worker (it took its READY), then "ready".
TEST_F(WorkerTest, HealthFileSaysReadyOnceTheBrokerTookIt) {
  health_file_ = ::testing::TempDir() + "/worker_test_health_" + std::to_string(getpid());
  auto read = [&] {
    std::ifstream in(health_file_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  Start();
  broker_.Next(wire::Body::Ready);
  broker_.Next(wire::Body::Heartbeat);  // written again with each heartbeat
  EXPECT_EQ(read(), "connecting\n");
  broker_.Send(messages::EncodeBody(wire::HeartbeatT{}));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (read() != "ready\n" && std::chrono::steady_clock::now() < until) broker_.Next(wire::Body::Heartbeat);
  EXPECT_EQ(read(), "ready\n");
  std::remove(health_file_.c_str());
}

TEST_F(WorkerTest, ReconnectsWhenTheBrokerSaysDisconnect) {
  Start();
  broker_.Next(wire::Body::Ready);
  wire::DisconnectT disconnect;
  disconnect.reason = "test";
  broker_.Send(messages::EncodeBody(std::move(disconnect)));
  broker_.Next(wire::Body::Ready);
  EXPECT_EQ(worker_->reconnects(), 1u);
}

}  // namespace
}  // namespace thalamus::experts
