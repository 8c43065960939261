#include "tests/frontends/scripted_query_service.h"

#include <algorithm>
#include <memory>

namespace thalamus::frontends::testing {

ScriptedQueryService::ScriptedQueryService() : worker_([this] { Work(); }) {}

ScriptedQueryService::~ScriptedQueryService() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    released_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void ScriptedQueryService::Submit(wire::QueryT query, router::QueryCallbacks callbacks) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back(query);
    jobs_.push_back(Job{std::move(query), std::move(callbacks), script_});
    ++busy_;
  }
  cv_.notify_all();
}

std::vector<router::ServiceInfo> ScriptedQueryService::Services() const {
  std::lock_guard<std::mutex> lock(mu_);
  router::ServiceInfo echo{"echo", "echo", "repeats the prompt", "echo-v1", ready_ ? 2 : 0, 0, 0};
  router::ServiceInfo docs{"docs", "rag", "product manuals", "docs-index", ready_ ? 1 : 0, 3, 1};
  return {echo, docs};
}

bool ScriptedQueryService::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_;
}

void ScriptedQueryService::SetScript(Script script) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = std::move(script);
  released_ = false;
}

void ScriptedQueryService::SetReady(bool ready) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_ = ready;
}

void ScriptedQueryService::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

bool ScriptedQueryService::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return busy_ == 0; });
}

std::vector<wire::QueryT> ScriptedQueryService::queries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_;
}

void ScriptedQueryService::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    Answer(job);
    job = Job{};  // destroy the callbacks before reporting idle
    lock.lock();
    --busy_;
    cv_.notify_all();
  }
}

void ScriptedQueryService::Answer(Job& job) {
  const Script& script = job.script;
  std::string prompt = job.query.prompt;
  if (!job.query.messages.empty()) prompt = job.query.messages.back()->content;
  const std::string answer = script.answer.value_or("echo: " + prompt);
  const bool fails = script.status != wire::StatusCode::OK;

  if (job.query.stream && (!fails || script.fail_after_partials)) {
    std::vector<std::string> pieces = script.pieces;
    if (pieces.empty()) {
      size_t n = static_cast<size_t>(std::max(1, script.partials));
      size_t size = (answer.size() + n - 1) / n;
      for (size_t at = 0; at < answer.size(); at += size) pieces.push_back(answer.substr(at, size));
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::this_thread::sleep_for(script.delay);
      job.callbacks.on_partial(pieces[i]);
      if (i == 0 && script.hold_after_first_partial) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return released_; });
      }
    }
  }

  wire::QueryResultT result;
  result.client_request_id = job.query.client_request_id;
  if (fails) {
    result.status = script.status;
    result.error = script.error;
    result.retry_after_ms = script.retry_after_ms;
    job.callbacks.on_result(std::move(result));
    return;
  }
  result.answer = answer;
  result.finish_reason = "stop";
  result.prompt_tokens = static_cast<uint32_t>(prompt.size());
  result.completion_tokens = static_cast<uint32_t>(answer.size());
  auto citation = std::make_unique<wire::PassageT>();
  citation->text = "a passage";
  citation->source = "manual.md";
  citation->domain = "docs";
  citation->score = 0.3f;
  citation->start = 10;
  citation->end = 19;
  citation->chunk_id = 7;
  result.citations.push_back(std::move(citation));
  if (script.with_trace && job.query.with_trace) {
    auto trace = std::make_unique<wire::TraceT>();
    auto gate = std::make_unique<wire::GateScoreT>();
    gate->service = "echo";
    gate->probability = 0.75f;
    trace->gate.push_back(std::move(gate));
    trace->gate_reason = "scripted";
    trace->chosen = {"echo"};
    trace->plan = "direct";
    trace->aggregation = "top1";
    auto expert = std::make_unique<wire::ExpertTraceT>();
    expert->service = "echo";
    expert->worker = "host:42";
    expert->status = wire::StatusCode::OK;
    expert->text = answer;
    expert->gate_probability = 0.75f;
    expert->confidence = 1.0f;
    expert->latency_ms = 1.5f;
    expert->attempts = 1;
    trace->experts.push_back(std::move(expert));
    trace->total_ms = 2.5f;
    result.trace = std::move(trace);
  }
  job.callbacks.on_result(std::move(result));
}

}  // namespace thalamus::frontends::testing
