#include "router/event_loop.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <future>

namespace thalamus::router {

namespace net = boost::asio;

struct EventLoop::Watch {
  zmq::socket_t* socket;
  net::posix::stream_descriptor descriptor;
  std::function<void()> on_readable;
  bool recheck_due = false;
};

EventLoop::EventLoop() = default;

EventLoop::~EventLoop() { Stop(); }

void EventLoop::AddSocket(zmq::socket_t& socket, std::function<void()> on_readable) {
  const int fd = socket.get(zmq::sockopt::fd);
  watches_.push_back(
      std::make_unique<Watch>(Watch{&socket, net::posix::stream_descriptor(io_, fd), std::move(on_readable)}));
  Wait(*watches_.back());
}

void EventLoop::Wait(Watch& watch) {
  watch.descriptor.async_wait(net::posix::stream_descriptor::wait_read, [this, &watch](boost::system::error_code ec) {
    if (ec) return;  // the loop stopped watching
    // Arm before draining: input that arrives while we drain then finds a
    // waiter for its edge; input that arrived before is drained below.
    Wait(watch);
    Drain(watch);
  });
}

void EventLoop::Drain(Watch& watch) {
  // The handler reads until EAGAIN, and a non-blocking receive that finds
  // nothing makes ZeroMQ take in its pending commands first, which re-arms
  // ZMQ_FD for the next edge. So no ZMQ_EVENTS check is needed around it:
  // each such check costs a poll() system call when there is nothing to take.
  watch.on_readable();
}

void EventLoop::RecheckSocket(zmq::socket_t& socket) {
  for (auto& watch : watches_) {
    if (watch->socket == &socket) watch->recheck_due = true;
  }
  if (recheck_posted_) return;
  recheck_posted_ = true;
  net::post(io_, [this] {
    recheck_posted_ = false;
    for (auto& watch : watches_) {
      if (!watch->recheck_due) continue;
      watch->recheck_due = false;
      Drain(*watch);
    }
  });
}

void EventLoop::RunAt(Clock::time_point when, std::function<void()> fn) {
  timers_.push(Timer{when, timer_order_++, std::move(fn)});
  if (!timer_armed_for_ || when < *timer_armed_for_) ArmTimer();
}

void EventLoop::ArmTimer() {
  if (timers_.empty()) {
    timer_armed_for_.reset();
    return;
  }
  timer_armed_for_ = timers_.top().when;
  // Re-arming cancels the previous wait, whose handler then sees
  // operation_aborted and leaves everything to this one.
  timer_.expires_at(*timer_armed_for_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    RunDueTimers();
    ArmTimer();
  });
}

void EventLoop::RunDueTimers() {
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.top().when <= now) {
    std::function<void()> fn = std::move(const_cast<Timer&>(timers_.top()).fn);
    timers_.pop();
    fn();
  }
}

void EventLoop::Every(std::chrono::milliseconds period, std::function<void()> fn) {
  auto shared = std::make_shared<std::function<void()>>(std::move(fn));
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [this, period, shared, weak = std::weak_ptr<std::function<void()>>(tick)] {
    (*shared)();
    if (auto self = weak.lock()) RunAt(Clock::now() + period, [self] { (*self)(); });
  };
  // The timer heap holds the only strong reference; the loop's lifetime bounds it.
  RunAt(Clock::now() + period, [tick] { (*tick)(); });
}

void EventLoop::Post(std::function<void()> fn) { net::post(io_, std::move(fn)); }

void EventLoop::Call(const std::function<void()>& fn) {
  if (InLoopThread() || !running_) {
    fn();
    return;
  }
  std::promise<void> done;
  Post([&] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  done.get_future().get();
}

void EventLoop::Start() {
  running_ = true;
  thread_ = std::thread([this] {
    auto work = net::make_work_guard(io_);
    io_.run();
  });
}

void EventLoop::Stop() {
  if (thread_.joinable()) {
    // Behind the work already posted, so that work still runs.
    Post([this] { io_.stop(); });
    thread_.join();
    running_ = false;
  }
  // Deregister ZMQ_FD from epoll while the sockets (which own the
  // descriptors) are still open; release() leaves them open.
  for (auto& watch : watches_) {
    if (watch->descriptor.is_open()) watch->descriptor.release();
  }
}

}  // namespace thalamus::router
