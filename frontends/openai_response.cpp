// Response bodies and streamed events of the HTTP front end (see openai_response.h).
#include "frontends/openai_response.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>

#include "frontends/http_head.h"

namespace thalamus::frontends::openai {

using json = nlohmann::json;

namespace {

// Model output may hold invalid UTF-8 (a byte-level tokenizer can emit half a
// character); replace it rather than fail the answer.
std::string Dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// A float widened to double prints as 0.30000001192092896; print the float's
// own shortest form instead.
json Number(float value) {
  if (!std::isfinite(value)) return nullptr;
  char buffer[32];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec != std::errc()) return static_cast<double>(value);
  return std::strtod(std::string(buffer, end).c_str(), nullptr);
}

const char* ErrorType(int status) {
  if (status == 429) return "rate_limit_error";
  if (status == 499) return "cancelled";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

std::string FinishReason(const wire::QueryResultT& result) {
  return result.finish_reason == "length" ? "length" : "stop";
}

json Usage(const wire::QueryResultT& result) {
  return {{"prompt_tokens", result.prompt_tokens},
          {"completion_tokens", result.completion_tokens},
          {"total_tokens", uint64_t{result.prompt_tokens} + result.completion_tokens}};
}

json PassagesJson(const std::vector<std::unique_ptr<wire::PassageT>>& passages) {
  json out = json::array();
  for (const auto& p : passages) {
    if (!p) continue;
    out.push_back({{"text", p->text},
                   {"source", p->source},
                   {"domain", p->domain},
                   {"score", Number(p->score)},
                   {"start", p->start},
                   {"end", p->end},
                   {"chunk_id", p->chunk_id}});
  }
  return out;
}

json TraceJson(const wire::TraceT& trace) {
  json gate = json::array();
  for (const auto& g : trace.gate) {
    if (g) gate.push_back({{"service", g->service}, {"probability", Number(g->probability)}});
  }
  json experts = json::array();
  for (const auto& e : trace.experts) {
    if (!e) continue;
    experts.push_back({{"service", e->service},
                       {"worker", e->worker},
                       {"status", messages::StatusName(e->status)},
                       {"error", e->error},
                       {"text", e->text},
                       {"passages", PassagesJson(e->passages)},
                       {"gate_probability", Number(e->gate_probability)},
                       {"confidence", Number(e->confidence)},
                       {"latency_ms", Number(e->latency_ms)},
                       {"attempts", e->attempts}});
    if (!e->prompt.empty()) experts.back()["prompt"] = e->prompt;
  }
  return {{"gate", gate},       {"gate_reason", trace.gate_reason},  {"chosen", trace.chosen},
          {"plan", trace.plan}, {"plan_reason", trace.plan_reason},  {"aggregation", trace.aggregation},
          {"experts", experts}, {"total_ms", Number(trace.total_ms)}};
}

json Envelope(const ResponseIds& ids, const char* object) {
  return {{"id", ids.id}, {"object", object}, {"created", ids.created}, {"model", ids.model}};
}

}  // namespace

ResponseIds NewResponseIds(Api api, const std::string& model) {
  thread_local std::mt19937_64 random(std::random_device{}());
  static const char* kPrefix[] = {"chatcmpl-", "cmpl-", "query-"};
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t bits = random();
  char hex[16];
  for (char& digit : hex) {
    digit = kHex[bits >> 60];
    bits <<= 4;
  }
  ResponseIds ids;
  ids.id = std::string(kPrefix[static_cast<int>(api)]) + std::string(hex, sizeof hex);
  ids.model = model;
  ids.created =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return ids;
}

namespace {

// The chat and completion bodies, the hot path of the HTTP front end, are
// written out directly: as a json tree (a node allocated per key) they cost
// about 2 us per answer, a sixth of the router's CPU per request in
// bench_router_overhead. Strings that need escaping or UTF-8 checking still go
// through nlohmann; printable ASCII without quote or backslash, the common
// case for ids, model names and English answers, is its own JSON form, and
// copying it directly saves a json value, a serializer and three allocations.
void AppendString(std::string& out, std::string_view text) {
  const bool plain =
      std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (!plain) {
    out += Dump(json(text));
    return;
  }
  out += '"';
  out += text;
  out += '"';
}

std::string CompletionJson(Api api, const ResponseIds& ids, const wire::QueryResultT& result) {
  std::string out;
  out.reserve(320 + ids.id.size() + ids.model.size() + result.answer.size() + result.answer.size() / 8);
  out += R"({"id":)";
  AppendString(out, ids.id);
  out += api == Api::kChat ? R"(,"object":"chat.completion","created":)" : R"(,"object":"text_completion","created":)";
  out += std::to_string(ids.created);
  out += R"(,"model":)";
  AppendString(out, ids.model);
  out += api == Api::kChat ? R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)"
                           : R"(,"choices":[{"index":0,"text":)";
  AppendString(out, result.answer);
  if (api == Api::kChat) out += '}';
  out += R"(,"logprobs":null,"finish_reason":")";
  out += FinishReason(result);
  out += R"("}],"usage":{"prompt_tokens":)";
  http_internal::AppendDecimal(out, result.prompt_tokens);
  out += R"(,"completion_tokens":)";
  http_internal::AppendDecimal(out, result.completion_tokens);
  out += R"(,"total_tokens":)";
  http_internal::AppendDecimal(out, uint64_t{result.prompt_tokens} + result.completion_tokens);
  out += '}';
  // An extension, as other retrieval-backed APIs do: where the answer came from.
  if (!result.citations.empty()) {
    out += R"(,"citations":)";
    out += Dump(PassagesJson(result.citations));
  }
  out += '}';
  return out;
}

}  // namespace

std::string ResultJson(Api api, const ResponseIds& ids, const wire::QueryResultT& result) {
  if (api != Api::kQuery) return CompletionJson(api, ids, result);
  json out = {{"id", ids.id}, {"object", "thalamus.query.result"}, {"created", ids.created}};
  out["answer"] = result.answer;
  out["citations"] = PassagesJson(result.citations);
  out["finish_reason"] = result.finish_reason.empty() ? "stop" : result.finish_reason;
  out["usage"] = Usage(result);
  if (result.trace) out["trace"] = TraceJson(*result.trace);
  return Dump(out);
}

std::string ErrorJson(int status, std::string_view message, std::string_view code, std::string_view param) {
  json error = {{"message", message},
                {"type", ErrorType(status)},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", code}};
  return Dump({{"error", error}});
}

std::string ErrorJson(const ApiError& error) {
  return ErrorJson(error.status(), error.what(), error.code(), error.param());
}

std::string ErrorJson(const wire::QueryResultT& failed) {
  const char* name = messages::StatusName(failed.status);
  return ErrorJson(messages::HttpStatus(failed.status), failed.error.empty() ? name : failed.error, name);
}

int RetryAfterSeconds(const wire::QueryResultT& failed) {
  if (failed.status != wire::StatusCode::OVERLOADED && failed.status != wire::StatusCode::UNAVAILABLE) {
    return 0;
  }
  int seconds = static_cast<int>((uint64_t{failed.retry_after_ms} + 999) / 1000);
  return seconds < 1 ? 1 : seconds;
}

std::string ModelsJson(const std::vector<router::ServiceInfo>& services, int64_t created) {
  json data = json::array();
  for (const router::ServiceInfo& s : services) {
    data.push_back({{"id", s.name},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", "thalamus"},
                    {"kind", s.kind},
                    {"description", s.description},
                    {"served_model", s.model},
                    {"live_workers", s.live_workers}});
  }
  return Dump({{"object", "list"}, {"data", data}});
}

std::string ReadyJson(bool ready, const std::vector<router::ServiceInfo>& services) {
  json by_service = json::object();
  for (const router::ServiceInfo& s : services) {
    by_service[s.name] = {{"live_workers", s.live_workers}, {"queued", s.queued}, {"in_flight", s.in_flight}};
  }
  return Dump({{"status", ready ? "ready" : "not_ready"}, {"services", by_service}});
}

StreamEncoder::StreamEncoder(Api api, ResponseIds ids, bool include_usage)
    : api_(api), ids_(std::move(ids)), include_usage_(include_usage) {}

std::vector<std::string> StreamEncoder::Partial(std::string_view text) {
  held_.append(text);
  size_t complete = CompleteUtf8Prefix(held_);
  if (complete == 0) return {};
  std::string piece = held_.substr(0, complete);
  held_.erase(0, complete);
  return {Delta(piece)};
}

std::string StreamEncoder::Delta(std::string_view text) {
  streamed_.append(text);
  json out;
  switch (api_) {
    case Api::kChat: {
      json delta = {{"content", text}};
      if (!sent_role_) delta["role"] = "assistant";
      sent_role_ = true;
      out = Envelope(ids_, "chat.completion.chunk");
      out["choices"] =
          json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
      break;
    }
    case Api::kCompletion:
      out = Envelope(ids_, "text_completion");
      out["choices"] = json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
      break;
    case Api::kQuery:
      out = {{"id", ids_.id}, {"object", "thalamus.query.delta"}, {"created", ids_.created}, {"delta", text}};
      break;
  }
  return Dump(out);
}

std::vector<std::string> StreamEncoder::Finish(const wire::QueryResultT& result) {
  std::vector<std::string> events;
  // The aggregated answer normally extends what was streamed; anything past
  // that (or a held-back byte tail) still has to reach the client.
  std::string rest = std::move(held_);
  held_.clear();
  if (result.answer.size() >= streamed_.size() + rest.size() &&
      std::string_view(result.answer).substr(0, streamed_.size()) == streamed_) {
    rest = result.answer.substr(streamed_.size());
  }
  if (!rest.empty()) events.push_back(Delta(rest));
  json last;
  switch (api_) {
    case Api::kChat: {
      json delta = json::object();
      if (!sent_role_) delta["role"] = "assistant";
      last = Envelope(ids_, "chat.completion.chunk");
      last["choices"] = json::array(
          {{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", FinishReason(result)}}});
      break;
    }
    case Api::kCompletion:
      last = Envelope(ids_, "text_completion");
      last["choices"] =
          json::array({{{"index", 0}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", FinishReason(result)}}});
      break;
    case Api::kQuery: events.push_back(ResultJson(Api::kQuery, ids_, result)); return events;
  }
  events.push_back(Dump(last));
  if (include_usage_) {
    json usage = Envelope(ids_, api_ == Api::kChat ? "chat.completion.chunk" : "text_completion");
    usage["choices"] = json::array();
    usage["usage"] = Usage(result);
    events.push_back(Dump(usage));
  }
  return events;
}

std::string StreamEncoder::Error(const wire::QueryResultT& failed) const { return ErrorJson(failed); }

size_t CompleteUtf8Prefix(std::string_view text) {
  // Find the lead byte of the last sequence (at most 3 continuation bytes back).
  size_t n = text.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte
    size_t length = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return back < length ? n - back : n;
  }
  return n;
}

}  // namespace thalamus::frontends::openai
