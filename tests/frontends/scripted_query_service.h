// A deterministic QueryService double for the front ends' tests and fuzz
// targets: it answers every query on its own thread, as the real router does,
// following a Script (echo by default; streamed in pieces, delayed, held,
// failed). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "router/query_service.h"

namespace thalamus::frontends::testing {

// How the double answers the next queries.
struct Script {
  // The answer is "echo: " + the prompt (or the last message's content),
  // unless `answer` is set.
  std::optional<std::string> answer = std::nullopt;
  // Streamed queries: the answer split into this many partials, or exactly
  // `pieces` when given.
  int partials = 3;
  std::vector<std::string> pieces = {};
  std::chrono::milliseconds delay{0};  // before each partial
  // Wait for Release() after the first partial.
  bool hold_after_first_partial = false;
  wire::StatusCode status = wire::StatusCode::OK;
  std::string error = "scripted failure";
  uint32_t retry_after_ms = 0;
  // Failures come after the partials (a stream that breaks mid-way).
  bool fail_after_partials = false;
  bool with_trace = true;
};

class ScriptedQueryService : public router::QueryService {
 public:
  ScriptedQueryService();
  ~ScriptedQueryService() override;

  void Submit(wire::QueryT query, router::QueryCallbacks callbacks) override;
  void SubmitInLoop(wire::QueryT query, router::QueryCallbacks callbacks) override {
    Submit(std::move(query), std::move(callbacks));
  }
  std::vector<router::ServiceInfo> Services() const override;
  bool Ready() const override;

  void SetScript(Script script);
  void SetReady(bool ready);
  void Release();
  // Blocks until every submitted query got its on_result (and the callbacks
  // were destroyed).
  bool WaitIdle(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The queries seen so far, oldest first.
  std::vector<wire::QueryT> queries() const;

 private:
  struct Job {
    wire::QueryT query;
    router::QueryCallbacks callbacks;
    Script script;
  };
  void Work();
  void Answer(Job& job);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Script script_;
  bool ready_ = true;
  bool released_ = false;
  bool stopping_ = false;
  int busy_ = 0;
  std::deque<Job> jobs_;
  std::vector<wire::QueryT> seen_;
  std::thread worker_;
};

}  // namespace thalamus::frontends::testing
