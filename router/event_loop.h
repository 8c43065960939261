// EventLoop: one thread that runs a Boost.Asio io_context and, through it,
// waits on ZeroMQ sockets, runs timers and runs work posted from other
// threads. The broker, the query pipeline and the ZeroMQ front end all live on
// it, so their state needs no locks; other threads reach them only through
// Post() or Call(). ZeroMQ sockets are not thread-safe, which is the other
// reason everything touching them runs here. Because the loop is an
// io_context, the HTTP front end can serve its connections on the same thread
// (http.threads: 0), which saves two cross-thread hand-offs per request.
//
// ZeroMQ sockets join the io_context through ZMQ_FD, which is edge-triggered:
// a send can take in the notice of input that arrived meanwhile, so whoever
// sends on an added socket also calls RecheckSocket() for it.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace thalamus::router {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;

  EventLoop();
  ~EventLoop();  // Stop()s
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  zmq::context_t& context() { return context_; }
  // The loop's io_context; handlers run on the loop thread.
  boost::asio::io_context& io_context() { return io_; }

  // Before Start(): call `on_readable` whenever `socket` may have input. The
  // handler must read until a non-blocking receive fails with EAGAIN (that
  // receive is what re-arms the socket's notice). `socket` must outlive Stop().
  void AddSocket(zmq::socket_t& socket, std::function<void()> on_readable);
  // Loop thread only, with each send on an added socket: look for input the
  // send took the notice of (see above). The look runs on a later turn of
  // the loop, so calling this before or after the send is the same. Cheap;
  // coalesced per loop turn, and only the sockets sent on are looked at (a
  // look costs a system call when there is nothing to find).
  void RecheckSocket(zmq::socket_t& socket);
  // Loop thread only (or before Start()): run `fn` at `when`.
  void RunAt(Clock::time_point when, std::function<void()> fn);
  // Loop thread only (or before Start()): run `fn` every `period`.
  void Every(std::chrono::milliseconds period, std::function<void()> fn);
  // Any thread: run `fn` on the loop thread soon.
  void Post(std::function<void()> fn);
  // Any thread: run `fn` on the loop thread and wait for it; inline when
  // called on the loop thread or while the loop is not running.
  void Call(const std::function<void()>& fn);

  void Start();
  // Runs posted work already queued, then joins the thread and stops
  // watching the sockets. Idempotent.
  void Stop();
  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Watch;
  struct Timer {
    Clock::time_point when;
    uint64_t order;
    std::function<void()> fn;
    bool operator>(const Timer& other) const { return when != other.when ? when > other.when : order > other.order; }
  };

  void Wait(Watch& watch);
  void Drain(Watch& watch);
  void ArmTimer();
  void RunDueTimers();

  zmq::context_t context_{1};
  boost::asio::io_context io_{1};
  std::vector<std::unique_ptr<Watch>> watches_;
  bool recheck_posted_ = false;  // loop thread only, like Watch::recheck_due
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  uint64_t timer_order_ = 0;
  boost::asio::steady_timer timer_{io_};
  std::optional<Clock::time_point> timer_armed_for_;
  std::atomic<bool> running_{false};
  std::thread thread_;
};

}  // namespace thalamus::router
