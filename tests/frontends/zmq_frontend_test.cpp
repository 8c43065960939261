// ZmqFrontend: in-process, a DEALER client on the test thread over inproc://
// and a QueryService that answers at once. Hostile frames get a BAD_REQUEST
// QueryResult naming what is wrong, and the front end keeps serving.
#include "frontends/zmq_frontend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "messages/messages.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "security/zap_handler.h"
#include "tests/support/frames.h"
#include "tests/support/process.h"

namespace thalamus::frontends {
namespace {

using namespace std::chrono_literals;

// Answers "echo: <prompt>" on the loop thread, streaming it in one partial when asked.
class EchoService : public router::QueryService {
 public:
  void Submit(wire::QueryT query, router::QueryCallbacks callbacks) override {
    SubmitInLoop(std::move(query), std::move(callbacks));
  }
  void SubmitInLoop(wire::QueryT query, router::QueryCallbacks callbacks) override {
    wire::QueryResultT result;
    result.client_request_id = query.client_request_id;
    result.answer = "echo: " + query.prompt;
    if (query.stream) callbacks.on_partial(result.answer);
    callbacks.on_result(std::move(result));
  }
  std::vector<router::ServiceInfo> Services() const override { return {}; }
  bool Ready() const override { return true; }
};

ZmqFrontendOptions Options(const std::string& endpoint, const security::KeyPair* curve = nullptr) {
  ZmqFrontendOptions options;
  options.endpoint = endpoint;
  options.max_message_bytes = 1 << 20;
  options.curve = curve;
  return options;
}

// Holds every query until the test answers it.
class HoldingService : public EchoService {
 public:
  void SubmitInLoop(wire::QueryT query, router::QueryCallbacks callbacks) override {
    std::lock_guard lock(mu_);
    held_.emplace_back(std::move(query), std::move(callbacks));
  }
  size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  // The oldest held query's callbacks, to answer on the loop thread.
  router::QueryCallbacks Take() {
    std::lock_guard lock(mu_);
    router::QueryCallbacks callbacks = std::move(held_.front().second);
    held_.erase(held_.begin());
    return callbacks;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<wire::QueryT, router::QueryCallbacks>> held_;
};

class ZmqFrontendTest : public ::testing::Test {
 protected:
  ZmqFrontendTest()
      : frontend_(Options("inproc://zmq-frontend-test"), loop_, service_, metrics_),
        client_(loop_.context(), zmq::socket_type::dealer) {
    client_.set(zmq::sockopt::linger, 0);
    client_.connect(frontend_.endpoint());
    loop_.Start();
  }
  ~ZmqFrontendTest() override { loop_.Stop(); }

  void Send(const std::string& bytes) { client_.send(zmq::buffer(bytes), zmq::send_flags::none); }
  std::optional<wire::EnvelopeT> Receive() {
    client_.set(zmq::sockopt::rcvtimeo, 2000);
    zmq::message_t message;
    if (!client_.recv(message)) return std::nullopt;
    return messages::Decode(message.data(), message.size());
  }
  // The QueryResult of the next answer; fails the test if none comes.
  wire::QueryResultT NextResult() {
    auto envelope = Receive();
    EXPECT_TRUE(envelope && envelope->body.type == wire::Body::QueryResult);
    return envelope && envelope->body.type == wire::Body::QueryResult ? *envelope->body.AsQueryResult()
                                                                      : wire::QueryResultT();
  }
  std::string Query(const std::string& prompt, uint64_t id) {
    wire::QueryT query;
    query.prompt = prompt;
    query.client_request_id = id;
    return messages::EncodeBody(std::move(query));
  }

  router::EventLoop loop_;
  router::Metrics metrics_;
  EchoService service_;
  ZmqFrontend frontend_;
  zmq::socket_t client_;
};

TEST_F(ZmqFrontendTest, AnswersAQuery) {
  Send(Query("hi", 5));
  const wire::QueryResultT result = NextResult();
  EXPECT_EQ(result.status, wire::StatusCode::OK);
  EXPECT_EQ(result.answer, "echo: hi");
  EXPECT_EQ(result.client_request_id, 5u);
}

TEST_F(ZmqFrontendTest, BodylessAndWrongFramesAreBadRequestsAndServingGoesOn) {
  for (auto type : wire::EnumValuesBody()) {
    Send(testing::BodylessEnvelope(type));
    const wire::QueryResultT result = NextResult();
    EXPECT_EQ(result.status, wire::StatusCode::BAD_REQUEST) << wire::EnumNameBody(type);
    EXPECT_NE(result.error.find("expected a FlatBuffers Envelope holding a Query: "), std::string::npos);
  }
  Send(testing::BodylessEnvelope(wire::Body::Query));
  EXPECT_NE(NextResult().error.find("Query envelope without its body"), std::string::npos);
  Send(messages::EncodeBody(wire::HeartbeatT()));
  EXPECT_NE(NextResult().error.find("Heartbeat, not a Query"), std::string::npos);
  wire::QueryT fan_out;
  fan_out.prompt = "x";
  fan_out.experts.assign(messages::kMaxQueryExperts + 1, "echo");
  Send(messages::EncodeBody(std::move(fan_out)));
  EXPECT_NE(NextResult().error.find("(at most 64)"), std::string::npos);
  Send("garbage");
  EXPECT_NE(NextResult().error.find("not a valid FlatBuffers Envelope"), std::string::npos);

  Send(Query("still here", 9));
  EXPECT_EQ(NextResult().answer, "echo: still here");
  const std::string expected =
      "thalamus_invalid_frames_total{endpoint=\"frontend\"} " + std::to_string(std::size(wire::EnumValuesBody()) + 4);
  EXPECT_NE(metrics_.Serialize().find(expected), std::string::npos) << expected;
}

// One client may have only so many queries unanswered; others are not held back.
TEST(ZmqFrontendLimits, AClientBeyondItsQueriesInFlightGetsOverloaded) {
  router::EventLoop loop;
  router::Metrics metrics;
  HoldingService service;
  ZmqFrontendOptions options = Options("inproc://zmq-frontend-in-flight");
  options.max_in_flight_per_client = 2;
  options.retry_after_ms = 700;
  ZmqFrontend frontend(options, loop, service, metrics);
  loop.Start();
  const auto client = [&] {
    zmq::socket_t socket(loop.context(), zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvtimeo, 2000);
    socket.connect(frontend.endpoint());
    return socket;
  };
  const auto ask = [](zmq::socket_t& socket, uint64_t id) {
    wire::QueryT query;
    query.prompt = "q";
    query.client_request_id = id;
    socket.send(zmq::buffer(messages::EncodeBody(std::move(query))), zmq::send_flags::none);
  };
  const auto result = [](zmq::socket_t& socket) {
    zmq::message_t message;
    EXPECT_TRUE(socket.recv(message).has_value());
    auto envelope = messages::Decode(message.data(), message.size());
    return envelope && envelope->body.type == wire::Body::QueryResult ? *envelope->body.AsQueryResult()
                                                                      : wire::QueryResultT();
  };
  zmq::socket_t greedy = client();
  for (uint64_t id = 1; id <= 3; ++id) ask(greedy, id);
  const wire::QueryResultT refused = result(greedy);
  EXPECT_EQ(refused.status, wire::StatusCode::OVERLOADED);
  EXPECT_EQ(refused.client_request_id, 3u);
  EXPECT_EQ(refused.retry_after_ms, 700u);
  EXPECT_EQ(service.held(), 2u);
  zmq::socket_t other = client();
  ask(other, 9);
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (service.held() < 3 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(service.held(), 3u);  // another client is not held back
  loop.Call([&] {
    wire::QueryResultT answer;
    answer.client_request_id = 1;
    service.Take().on_result(std::move(answer));
  });
  EXPECT_EQ(result(greedy).client_request_id, 1u);
  ask(greedy, 4);  // a slot is free again
  const auto later = std::chrono::steady_clock::now() + 2s;
  while (service.held() < 3 && std::chrono::steady_clock::now() < later) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(service.held(), 3u);
  loop.Call([&] {
    while (service.held() > 0) service.Take().on_result(wire::QueryResultT());
  });
  greedy.close();
  other.close();
  loop.Stop();
}

// ZMQ_MAXMSGSIZE works on the stream transports (tcp, ipc): a frame over the
// limit drops its sender's connection before it is read into memory.
TEST(ZmqFrontendLimits, AFrameOverTheSizeLimitIsNotRead) {
  router::EventLoop loop;
  router::Metrics metrics;
  EchoService service;
  ZmqFrontend frontend(Options("tcp://127.0.0.1:*"), loop, service, metrics);
  loop.Start();
  const auto ask = [&](zmq::socket_t& socket, const std::string& bytes) -> std::optional<wire::EnvelopeT> {
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvtimeo, 1000);
    socket.connect(frontend.endpoint());
    socket.send(zmq::buffer(bytes), zmq::send_flags::none);
    zmq::message_t message;
    if (!socket.recv(message)) return std::nullopt;
    return messages::Decode(message.data(), message.size());
  };
  zmq::socket_t hostile(loop.context(), zmq::socket_type::dealer);
  EXPECT_FALSE(ask(hostile, std::string((1 << 20) + 1, 'x')).has_value());  // dropped, never answered
  zmq::socket_t polite(loop.context(), zmq::socket_type::dealer);
  wire::QueryT query;
  query.prompt = "after";
  auto answer = ask(polite, messages::EncodeBody(std::move(query)));
  ASSERT_TRUE(answer && answer->body.type == wire::Body::QueryResult);
  EXPECT_EQ(answer->body.AsQueryResult()->answer, "echo: after");
  EXPECT_NE(metrics.Serialize().find("thalamus_invalid_frames_total{endpoint=\"frontend\"} 0"), std::string::npos);
  hostile.close();
  polite.close();
  loop.Stop();
}

// frontend_curve: a client with an authorized key is answered; one without
// a key (plaintext) or with an unknown key never reaches the service.
TEST(ZmqFrontendCurve, OnlyAuthorizedClientsAreAnswered) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/clients");
  const security::KeyPair server = security::GenerateKeyPair();
  const security::KeyPair client = security::GenerateKeyPair();
  security::WriteKeyPair(client, dir.path() + "/clients/app");
  router::EventLoop loop;
  router::Metrics metrics;
  EchoService service;
  security::ZapHandler zap(loop.context(), {{"frontend", dir.path() + "/clients"}},
                           [&](const std::string& domain) { metrics.CountAuthFailure(domain); });
  ZmqFrontend frontend(Options("tcp://127.0.0.1:*", &server), loop, service, metrics);
  loop.Start();
  const auto answered = [&](const std::function<void(zmq::socket_t&)>& configure) {
    zmq::socket_t socket(loop.context(), zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::rcvtimeo, 500);
    configure(socket);
    socket.connect(frontend.endpoint());
    wire::QueryT query;
    query.prompt = "knock";
    (void)socket.send(zmq::buffer(messages::EncodeBody(std::move(query))), zmq::send_flags::dontwait);
    zmq::message_t message;
    return socket.recv(message).has_value();
  };
  EXPECT_TRUE(answered([&](zmq::socket_t& s) { security::MakeCurveClient(s, client, server.public_key); }));
  EXPECT_FALSE(answered([](zmq::socket_t&) {}));
  const security::KeyPair stranger = security::GenerateKeyPair();
  EXPECT_FALSE(answered([&](zmq::socket_t& s) { security::MakeCurveClient(s, stranger, server.public_key); }));
  EXPECT_NE(metrics.Serialize().find("thalamus_auth_failures_total{endpoint=\"frontend\"} 1"), std::string::npos);
  loop.Stop();
}

}  // namespace
}  // namespace thalamus::frontends
