// EventLoop: ZeroMQ sockets, timers, posted and called work on one thread.
#include "router/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace thalamus::router {
namespace {

using namespace std::chrono_literals;

// A ROUTER on the loop that echoes every message from a later turn of the
// loop (as the broker answers from an HTTP handler or a timer): the send then
// happens outside the readable handler, where it can take in ZMQ_FD's notice
// of input that arrived meanwhile.
class EchoOnLoop {
 public:
  // `before_send` runs on the loop thread before each echo is sent.
  explicit EchoOnLoop(EventLoop& loop, std::function<void(const std::string&)> before_send = {})
      : loop_(loop), before_send_(std::move(before_send)), socket_(loop.context(), zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    loop.AddSocket(socket_, [this] { OnReadable(); });
  }
  const std::string& endpoint() const { return endpoint_; }
  std::thread::id handler_thread() const { return handler_thread_; }

 private:
  void OnReadable() {
    handler_thread_ = std::this_thread::get_id();
    for (;;) {
      auto identity = std::make_shared<zmq::message_t>();
      auto payload = std::make_shared<zmq::message_t>();
      if (!socket_.recv(*identity, zmq::recv_flags::dontwait)) return;
      (void)socket_.recv(*payload, zmq::recv_flags::none);
      loop_.Post([this, identity, payload] {
        if (before_send_) before_send_(payload->to_string());
        socket_.send(*identity, zmq::send_flags::sndmore);
        socket_.send(*payload, zmq::send_flags::none);
        loop_.RecheckSocket(socket_);
      });
    }
  }

  EventLoop& loop_;
  std::function<void(const std::string&)> before_send_;
  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<std::thread::id> handler_thread_{};
};

TEST(EventLoopTest, EchoesEveryMessageOnTheLoopThread) {
  EventLoop loop;
  EchoOnLoop echo(loop);
  loop.Start();

  zmq::context_t context(1);
  // Several clients with several messages in flight each keep input arriving
  // while the loop sends; a lost edge would leave replies unread and the
  // receive below would time out.
  constexpr int kClients = 4, kInFlight = 8, kRounds = 2000;
  std::vector<zmq::socket_t> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back(context, zmq::socket_type::dealer);
    clients.back().set(zmq::sockopt::rcvtimeo, 5000);
    clients.back().set(zmq::sockopt::linger, 0);
    clients.back().connect(echo.endpoint());
  }
  uint64_t next = 0;
  std::vector<uint64_t> expected;
  for (int round = 0; round < kRounds / kInFlight; ++round) {
    for (auto& client : clients) {
      for (int i = 0; i < kInFlight; ++i) {
        const std::string text = std::to_string(next++);
        client.send(zmq::buffer(text));
      }
    }
    for (auto& client : clients) {
      for (int i = 0; i < kInFlight; ++i) {
        zmq::message_t reply;
        ASSERT_TRUE(client.recv(reply)) << "an echo never came back (round " << round << ")";
      }
    }
  }
  EXPECT_NE(echo.handler_thread(), std::this_thread::get_id());
  EXPECT_NE(echo.handler_thread(), std::thread::id());
  loop.Stop();
}

// The case RecheckSocket() exists for, made certain: a message arrives while
// the loop is busy before a send, and the send (ZeroMQ takes in pending
// commands on a send at most every ~1 ms) consumes ZMQ_FD's notice of it.
TEST(EventLoopTest, InputWhoseNoticeASendTookInIsStillRead) {
  std::promise<void> busy, late_sent;
  auto late_sent_future = late_sent.get_future();
  EventLoop loop;
  EchoOnLoop echo(loop, [&](const std::string& text) {
    if (text != "slow") return;
    busy.set_value();
    late_sent_future.wait();
    std::this_thread::sleep_for(20ms);  // ZeroMQ's I/O thread delivers "late" meanwhile
  });
  loop.Start();

  zmq::context_t context(1);
  auto client = [&] {
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::rcvtimeo, 2000);
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(echo.endpoint());
    return socket;
  };
  zmq::socket_t slow = client(), late = client();
  // Both connections exist and the loop has read everything before the test.
  for (zmq::socket_t* socket : {&slow, &late}) {
    socket->send(zmq::str_buffer("hello"));
    zmq::message_t reply;
    ASSERT_TRUE(socket->recv(reply));
  }
  slow.send(zmq::str_buffer("slow"));
  ASSERT_EQ(busy.get_future().wait_for(5s), std::future_status::ready);
  late.send(zmq::str_buffer("late"));
  late_sent.set_value();

  zmq::message_t reply;
  ASSERT_TRUE(slow.recv(reply));
  EXPECT_EQ(reply.to_string(), "slow");
  ASSERT_TRUE(late.recv(reply)) << "the loop never read a message that arrived during a send";
  EXPECT_EQ(reply.to_string(), "late");
  loop.Stop();
}

TEST(EventLoopTest, TimersRunInTimeOrderAndEarlierOnesPreemptLaterOnes) {
  EventLoop loop;
  std::vector<int> order;
  std::promise<void> done;
  const auto now = EventLoop::Clock::now();
  loop.RunAt(now + 200ms, [&] {
    order.push_back(3);
    done.set_value();
  });
  loop.RunAt(now + 100ms, [&] { order.push_back(2); });
  loop.RunAt(now + 20ms, [&] { order.push_back(1); });
  const auto start = std::chrono::steady_clock::now();
  loop.Start();
  ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  loop.Stop();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EventLoopTest, EveryRepeatsUntilStopped) {
  EventLoop loop;
  std::atomic<int> ticks{0};
  loop.Every(5ms, [&] { ++ticks; });
  loop.Start();
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (ticks < 5 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
  loop.Stop();
  EXPECT_GE(ticks.load(), 5);
  const int after_stop = ticks;
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(ticks.load(), after_stop);
}

TEST(EventLoopTest, PostedWorkFromManyThreadsAllRunsBeforeStopReturns) {
  EventLoop loop;
  loop.Start();
  int count = 0;  // touched on the loop thread only
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) loop.Post([&] { ++count; });
    });
  }
  for (auto& poster : posters) poster.join();
  loop.Stop();
  EXPECT_EQ(count, 4000);
}

TEST(EventLoopTest, CallRunsOnTheLoopThreadAndPassesExceptionsBack) {
  EventLoop loop;
  std::thread::id ran_on;
  loop.Call([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, std::this_thread::get_id()) << "not running: inline";

  loop.Start();
  loop.Call([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_THROW(loop.Call([] { throw std::runtime_error("inside"); }), std::runtime_error);
  // Called from the loop thread itself: inline, no deadlock.
  bool nested = false;
  loop.Call([&] { loop.Call([&] { nested = true; }); });
  EXPECT_TRUE(nested);
  loop.Stop();
  loop.Stop();  // idempotent
}

}  // namespace
}  // namespace thalamus::router
