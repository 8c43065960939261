#include "router/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <stdexcept>

namespace thalamus::router {

EventLoop::EventLoop() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  items_.push_back({nullptr, wake_fd_, ZMQ_POLLIN, 0});
  handlers_.push_back([this] {
    uint64_t count;
    [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
    RunPosted();
  });
}

EventLoop::~EventLoop() {
  Stop();
  close(wake_fd_);
}

void EventLoop::AddSocket(zmq::socket_t& socket, std::function<void()> on_readable) {
  items_.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});
  handlers_.push_back(std::move(on_readable));
}

void EventLoop::RunAt(Clock::time_point when, std::function<void()> fn) {
  timers_.push(Timer{when, timer_order_++, std::move(fn)});
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

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::RunPosted() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard lock(posted_mutex_);
    batch.swap(posted_);
  }
  for (auto& fn : batch) fn();
}

void EventLoop::RunDueTimers() {
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.top().when <= now) {
    std::function<void()> fn = std::move(const_cast<Timer&>(timers_.top()).fn);
    timers_.pop();
    fn();
  }
}

void EventLoop::Loop() {
  while (!stop_) {
    long timeout_ms = -1;
    if (!timers_.empty()) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(timers_.top().when - Clock::now()).count();
      timeout_ms = std::max<long>(0, wait + 1);
    }
    zmq::poll(items_.data(), items_.size(), std::chrono::milliseconds(timeout_ms));
    for (size_t i = 0; i < items_.size() && !stop_; ++i) {
      if (items_[i].revents & ZMQ_POLLIN) handlers_[i]();
    }
    RunDueTimers();
  }
}

void EventLoop::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void EventLoop::Stop() {
  if (!thread_.joinable()) return;
  Post([this] { stop_ = true; });
  thread_.join();
}

}  // namespace thalamus::router
