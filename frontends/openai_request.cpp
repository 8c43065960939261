// Request parsing and validation for the HTTP front end (see openai_request.h).
#include "frontends/openai_request.h"

#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

namespace thalamus::frontends::openai {

using json = nlohmann::json;

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : std::runtime_error(message),
      status_(status),
      param_(std::move(param)),
      code_(code.empty() ? (status == 400 ? "bad_request" : "error") : std::move(code)) {}

namespace {

constexpr int kMaxStopSequences = 16;
constexpr int64_t kMaxDeadlineMs = 24LL * 3600 * 1000;
constexpr double kMaxTemperature = 100.0;

[[noreturn]] void Invalid(const std::string& param, const std::string& what) {
  throw ApiError(400, param + ": " + what, param);
}

std::string Describe(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a non-integral number";
    default: return "a number";
  }
}

// Optional fields that are absent or null read as absent: clients commonly
// send "stop": null and the like.
const json* Field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// The messages below are built only when a value is refused: valid requests,
// the common case, pay for no strings.
int64_t IntegerValue(const json& value, const std::string& param, int64_t lo, int64_t hi) {
  const auto refuse = [&](const std::string& got) {
    Invalid(param, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + got);
  };
  if (value.is_number_unsigned()) {
    uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(hi) || static_cast<int64_t>(v) < lo) refuse(std::to_string(v));
    return static_cast<int64_t>(v);
  }
  if (!value.is_number_integer()) refuse(Describe(value));
  int64_t v = value.get<int64_t>();
  if (v < lo || v > hi) refuse(std::to_string(v));
  return v;
}

double NumberValue(const json& value, const std::string& param, double lo, double hi, bool lo_inclusive) {
  const auto refuse = [&](const std::string& got) {
    Invalid(param, std::string("must be a number ") + (lo_inclusive ? ">= " : "> ") + json(lo).dump() +
                       " and <= " + json(hi).dump() + ", got " + got);
  };
  if (!value.is_number()) refuse(Describe(value));
  double v = value.get<double>();
  bool low_ok = lo_inclusive ? v >= lo : v > lo;
  if (!std::isfinite(v) || !low_ok || v > hi) refuse(value.dump());
  return v;
}

bool BoolValue(const json& value, const std::string& param) {
  if (!value.is_boolean()) Invalid(param, "must be a boolean, got " + Describe(value));
  return value.get<bool>();
}

const std::string& StringValue(const json& value, const std::string& param) {
  if (!value.is_string()) Invalid(param, "must be a string, got " + Describe(value));
  return value.get_ref<const std::string&>();
}

json ParseObject(std::string_view body) {
  json parsed;
  try {
    parsed = json::parse(body);
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("invalid JSON body: ") + e.what(), {}, "invalid_json");
  }
  if (!parsed.is_object()) {
    throw ApiError(400, "the request body must be a JSON object, got " + Describe(parsed), {}, "invalid_json");
  }
  return parsed;
}

std::vector<std::string> ParseStop(const json& value) {
  if (value.is_string()) {
    if (value.get_ref<const std::string&>().empty()) Invalid("stop", "must not be empty");
    return {value.get<std::string>()};
  }
  if (!value.is_array()) Invalid("stop", "must be a string or an array of strings");
  if (value.size() > kMaxStopSequences) {
    Invalid("stop", "at most " + std::to_string(kMaxStopSequences) + " sequences");
  }
  std::vector<std::string> stop;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string param = "stop[" + std::to_string(i) + "]";
    const std::string& s = StringValue(value[i], param);
    if (s.empty()) Invalid(param, "must not be empty");
    stop.push_back(s);
  }
  return stop;
}

// The sampling parameters every API shares.
std::unique_ptr<wire::GenerationParamsT> ParseParams(const json& body, int default_max_tokens) {
  auto params = std::make_unique<wire::GenerationParamsT>();
  params->max_tokens = default_max_tokens;
  const char* max_tokens_name = Field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (const json* v = Field(body, max_tokens_name)) {
    params->max_tokens = static_cast<int>(IntegerValue(*v, max_tokens_name, 1, kMaxTokensLimit));
  }
  if (const json* v = Field(body, "temperature")) {
    params->temperature = static_cast<float>(NumberValue(*v, "temperature", 0, kMaxTemperature, true));
  }
  if (const json* v = Field(body, "top_p")) {
    params->top_p = static_cast<float>(NumberValue(*v, "top_p", 0, 1, false));
  }
  if (const json* v = Field(body, "top_k")) {
    // -1 is how vLLM and others spell "off"; the wire uses 0.
    int64_t k = IntegerValue(*v, "top_k", -1, kMaxTokensLimit);
    params->top_k = static_cast<int>(k < 0 ? 0 : k);
  }
  if (const json* v = Field(body, "stop")) params->stop = ParseStop(*v);
  if (const json* v = Field(body, "seed")) {
    // The wire reserves seed 0 for "unseeded"; refusing it beats silently
    // answering a request for determinism with a random sample.
    params->seed = static_cast<uint64_t>(IntegerValue(*v, "seed", 1, std::numeric_limits<int64_t>::max()));
  }
  return params;
}

// `param_of` names the content for an error message (called only then).
template <typename ParamOf>
std::string ContentText(const json& content, const ParamOf& param_of) {
  if (content.is_string()) return content.get<std::string>();
  const std::string param = param_of();
  if (!content.is_array()) {
    Invalid(param, "must be a string or an array of text parts, got " + Describe(content));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string part_param = param + "[" + std::to_string(i) + "]";
    const json& part = content[i];
    if (!part.is_object()) Invalid(part_param, "must be an object, got " + Describe(part));
    const json* type = Field(part, "type");
    if (!type || !type->is_string() || *type != "text") {
      Invalid(part_param + ".type", "only \"text\" parts are supported");
    }
    const json* part_text = Field(part, "text");
    if (!part_text) Invalid(part_param + ".text", "is required");
    text += StringValue(*part_text, part_param + ".text");
  }
  return text;
}

std::vector<std::unique_ptr<wire::ChatMessageT>> ParseMessages(const json& value) {
  if (!value.is_array()) Invalid("messages", "must be an array, got " + Describe(value));
  if (value.empty()) Invalid("messages", "must not be empty");
  std::vector<std::unique_ptr<wire::ChatMessageT>> messages;
  for (size_t i = 0; i < value.size(); ++i) {
    // Names like messages[2].content, built only for an error message.
    const auto param = [i](const char* field) { return "messages[" + std::to_string(i) + "]" + field; };
    const json& m = value[i];
    if (!m.is_object()) Invalid(param(""), "must be an object with role and content, got " + Describe(m));
    const json* role = Field(m, "role");
    if (!role) Invalid(param(".role"), "is required");
    // StringValue only refuses here, with its usual message.
    std::string r = role->is_string() ? role->get<std::string>() : StringValue(*role, param(".role"));
    if (r == "developer") r = "system";  // OpenAI's newer name for the system prompt
    if (r != "system" && r != "user" && r != "assistant") {
      Invalid(param(".role"), "must be one of system, developer, user, assistant, got \"" + r.substr(0, 64) + "\"");
    }
    const json* content = Field(m, "content");
    if (!content) Invalid(param(".content"), "is required");
    auto message = std::make_unique<wire::ChatMessageT>();
    message->role = std::move(r);
    message->content = ContentText(*content, [&] { return param(".content"); });
    messages.push_back(std::move(message));
  }
  return messages;
}

void RejectUnsupported(const json& body, Api api) {
  if (const json* n = Field(body, "n"); n && IntegerValue(*n, "n", 1, 128) != 1) {
    Invalid("n", "only n = 1 is supported");
  }
  if (const json* v = Field(body, "tools"); v && !(v->is_array() && v->empty())) {
    Invalid("tools", "tool calling is not supported");
  }
  if (Field(body, "functions")) Invalid("functions", "function calling is not supported");
  if (const json* v = Field(body, "logprobs")) {
    if (!(v->is_boolean() && !v->get<bool>())) Invalid("logprobs", "logprobs are not supported");
  }
  if (const json* v = Field(body, "response_format")) {
    const json* type = v->is_object() ? Field(*v, "type") : nullptr;
    if (!type || *type != "text") Invalid("response_format", "only {\"type\": \"text\"} is supported");
  }
  if (api != Api::kCompletion) return;
  if (const json* v = Field(body, "echo"); v && BoolValue(*v, "echo")) {
    Invalid("echo", "echo is not supported");
  }
  if (const json* v = Field(body, "best_of"); v && IntegerValue(*v, "best_of", 1, 128) != 1) {
    Invalid("best_of", "only best_of = 1 is supported");
  }
  if (const json* v = Field(body, "suffix"); v && !StringValue(*v, "suffix").empty()) {
    Invalid("suffix", "suffix is not supported");
  }
}

std::string CompletionPrompt(const json& body) {
  const json* prompt = Field(body, "prompt");
  if (!prompt) Invalid("prompt", "is required");
  if (prompt->is_string()) return prompt->get<std::string>();
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    return (*prompt)[0].get<std::string>();
  }
  Invalid("prompt", "must be a string (or an array of exactly one string)");
}

void ParseStreamFlags(const json& body, ParsedRequest& out) {
  if (const json* v = Field(body, "stream")) out.stream = BoolValue(*v, "stream");
  if (const json* options = Field(body, "stream_options")) {
    if (!options->is_object()) Invalid("stream_options", "must be an object");
    if (const json* v = Field(*options, "include_usage")) {
      out.include_usage = BoolValue(*v, "stream_options.include_usage");
    }
  }
}

// OpenAI's `model`: an expert service, or kRouterModel / absent for the gate.
void ParseModel(const json& body, ParsedRequest& out) {
  out.model = std::string(kRouterModel);
  const json* model = Field(body, "model");
  if (!model) return;
  const std::string& name = StringValue(*model, "model");
  if (name.empty()) Invalid("model", "must not be empty");
  out.model = name;
  if (name != kRouterModel) out.query.experts.push_back(name);
}

void ParseNative(const json& body, ParsedRequest& out) {
  const json* prompt = Field(body, "prompt");
  const json* messages = Field(body, "messages");
  if ((prompt == nullptr) == (messages == nullptr)) {
    Invalid("prompt", "give exactly one of prompt and messages");
  }
  if (prompt) out.query.prompt = StringValue(*prompt, "prompt");
  if (messages) out.query.messages = ParseMessages(*messages);
  if (const json* experts = Field(body, "experts")) {
    if (!experts->is_array()) Invalid("experts", "must be an array of service names");
    if (experts->size() > messages::kMaxQueryExperts) Invalid("experts", "too many services");
    for (size_t i = 0; i < experts->size(); ++i) {
      const std::string param = "experts[" + std::to_string(i) + "]";
      const std::string& name = StringValue((*experts)[i], param);
      if (name.empty()) Invalid(param, "must not be empty");
      out.query.experts.push_back(name);
    }
  }
  if (const json* v = Field(body, "deadline_ms")) {
    out.query.deadline_ms = static_cast<uint32_t>(IntegerValue(*v, "deadline_ms", 0, kMaxDeadlineMs));
  }
  if (const json* v = Field(body, "with_trace")) out.query.with_trace = BoolValue(*v, "with_trace");
  if (const json* v = Field(body, "ralm_k"))
    out.query.ralm_k = static_cast<int32_t>(IntegerValue(*v, "ralm_k", 1, 1000));
  if (const json* v = Field(body, "stream")) out.stream = BoolValue(*v, "stream");
  out.model = std::string(kRouterModel);
}

}  // namespace

ParsedRequest ParseRequest(Api api, std::string_view body) {
  json parsed = ParseObject(body);
  ParsedRequest out;
  // OpenAI's legacy completions default to 16 tokens; the others use the
  // wire's default.
  out.query.params = ParseParams(parsed, api == Api::kCompletion ? 16 : wire::GenerationParamsT().max_tokens);
  switch (api) {
    case Api::kChat: {
      const json* messages = Field(parsed, "messages");
      if (!messages) Invalid("messages", "is required");
      out.query.messages = ParseMessages(*messages);
      break;
    }
    case Api::kCompletion: out.query.prompt = CompletionPrompt(parsed); break;
    case Api::kQuery: ParseNative(parsed, out); break;
  }
  if (api != Api::kQuery) {
    RejectUnsupported(parsed, api);
    ParseModel(parsed, out);
    ParseStreamFlags(parsed, out);
    // The OpenAI answers carry no trace; skip building it.
    out.query.with_trace = false;
  }
  out.query.stream = out.stream;
  return out;
}

}  // namespace thalamus::frontends::openai
