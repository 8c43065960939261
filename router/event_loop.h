// EventLoop: one thread that polls ZeroMQ sockets, runs timers and runs work
// posted from other threads. The broker, the query pipeline and the ZeroMQ
// front end all live on it, so their state needs no locks; other threads
// reach them only through Post(). ZeroMQ sockets are not thread-safe, which
// is the other reason everything touching them runs here.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace thalamus::router {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  zmq::context_t& context() { return context_; }

  // Before Start(): call `on_readable` whenever `socket` has input.
  void AddSocket(zmq::socket_t& socket, std::function<void()> on_readable);
  // Loop thread only (or before Start()): run `fn` at `when`.
  void RunAt(Clock::time_point when, std::function<void()> fn);
  // Loop thread only (or before Start()): run `fn` every `period`.
  void Every(std::chrono::milliseconds period, std::function<void()> fn);
  // Any thread: run `fn` on the loop thread soon.
  void Post(std::function<void()> fn);

  void Start();
  // Runs posted work already queued, then joins the thread.
  void Stop();
  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Timer {
    Clock::time_point when;
    uint64_t order;
    std::function<void()> fn;
    bool operator>(const Timer& other) const { return when != other.when ? when > other.when : order > other.order; }
  };

  void Loop();
  void RunPosted();
  void RunDueTimers();

  zmq::context_t context_{1};
  std::vector<zmq::pollitem_t> items_;
  std::vector<std::function<void()>> handlers_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  uint64_t timer_order_ = 0;
  int wake_fd_;
  std::mutex posted_mutex_;
  std::deque<std::function<void()>> posted_;
  bool stop_ = false;  // loop thread only
  std::thread thread_;
};

}  // namespace thalamus::router
