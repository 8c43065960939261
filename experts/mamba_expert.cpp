#include "experts/mamba_expert.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "models/batcher.h"
#include "models/mamba.h"

namespace thalamus::experts {
namespace {

constexpr const char* kChatStop = "\nUser:";

bool IsChat(const wire::ExpertRequestT& request) { return !request.messages.empty(); }

// A client error, answered BAD_REQUEST or CONTEXT_TOO_LONG.
struct RequestError : std::invalid_argument {
  RequestError(wire::StatusCode code, const std::string& message) : std::invalid_argument(message), code(code) {}
  wire::StatusCode code;
};

models::SamplingParams SamplingFor(const wire::ExpertRequestT& request) {
  const wire::GenerationParamsT defaults;
  const wire::GenerationParamsT& params = request.params ? *request.params : defaults;
  models::SamplingParams sampling;
  sampling.max_tokens = params.max_tokens;
  sampling.temperature = params.temperature;
  sampling.top_k = params.top_k;
  sampling.top_p = params.top_p;
  if (params.seed != 0) sampling.seed = params.seed;
  sampling.stop = params.stop;
  if (IsChat(request)) sampling.stop.push_back(kChatStop);
  try {
    sampling.Validate();
  } catch (const std::invalid_argument& e) {
    throw RequestError(wire::StatusCode::BAD_REQUEST, e.what());
  }
  return sampling;
}

class MambaExpert : public Expert {
 public:
  explicit MambaExpert(const config::ExpertConfig& c) : config_(c) {
    const std::string who = "expert '" + c.name + "': ";
    if (c.model.empty()) throw std::runtime_error(who + "kind mamba needs `model:`, a checkpoint directory");
    if (c.context_policy != "error" && c.context_policy != "truncate_left") {
      throw std::runtime_error(who + "context_policy must be error or truncate_left, got '" + c.context_policy + "'");
    }
    try {
      if (c.threads > 0) models::SetComputeThreads(c.threads);
      model_ = models::MambaModel::Load(c.model, models::DTypeFromName(c.dtype), models::DeviceFromName(c.device));
      const std::string tokenizer_file = c.tokenizer.empty() ? (std::filesystem::path(c.model) / "tokenizer.json").string() : c.tokenizer;
      tokenizer_ = std::make_unique<models::Tokenizer>(models::Tokenizer::FromFile(tokenizer_file));
    } catch (const std::exception& e) {
      throw std::runtime_error(who + e.what());
    }
    end_tokens_ = models::EndOfTextTokens(*tokenizer_, model_->config().eos_token_id);
    model_name_ = std::filesystem::path(c.model).lexically_normal().filename().string();
    if (model_name_.empty()) model_name_ = std::filesystem::path(c.model).lexically_normal().parent_path().filename().string();
    batcher_ = std::make_unique<models::Batcher>(*model_, *tokenizer_, std::max(1, c.max_batch), c.max_context);
  }

  std::string Model() const override { return model_name_; }

  wire::ExpertReplyT Serve(Job& job) override {
    const auto start = std::chrono::steady_clock::now();
    wire::ExpertReplyT reply;
    try {
      models::GenerationResult result = batcher_->Submit(Prepare(job)).get();
      Fill(result, reply);
    } catch (const RequestError& e) {
      reply.status = e.code;
      reply.error = e.what();
      reply.finish_reason = "error";
    } catch (const std::exception& e) {
      reply.status = wire::StatusCode::INTERNAL;
      reply.error = std::string("mamba: ") + e.what();
      reply.finish_reason = "error";
    }
    reply.compute_ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - start).count();
    return reply;
  }

 private:
  models::GenerationRequest Prepare(Job& job) const {
    const wire::ExpertRequestT& request = job.request();
    for (const auto& message : request.messages) {
      if (message->role != "system" && message->role != "user" && message->role != "assistant") {
        throw RequestError(wire::StatusCode::BAD_REQUEST, "unknown chat role '" + message->role + "' (system, user or assistant)");
      }
    }
    models::GenerationRequest generation;
    generation.sampling = SamplingFor(request);
    generation.sampling.stop_tokens = end_tokens_;
    try {
      generation.prompt = tokenizer_->Encode(RenderPrompt(request));
    } catch (const std::invalid_argument& e) {
      throw RequestError(wire::StatusCode::BAD_REQUEST, e.what());
    }
    FitContext(generation);
    generation.on_text = [&job](std::string_view text) { job.EmitText(text); };
    generation.cancelled = [&job] { return job.cancelled(); };
    return generation;
  }

  // max_context bounds prompt plus completion; truncate_left keeps the end of
  // the prompt and leaves room for the completion (at most half the context).
  void FitContext(models::GenerationRequest& generation) const {
    const int64_t limit = config_.max_context;
    const int64_t length = static_cast<int64_t>(generation.prompt.size());
    if (limit <= 0 || length < limit) return;
    if (config_.context_policy != "truncate_left") {
      throw RequestError(wire::StatusCode::CONTEXT_TOO_LONG, "the prompt has " + std::to_string(length) +
                                                                  " tokens; this expert's context limit is " + std::to_string(limit));
    }
    const int64_t keep = limit - std::max<int64_t>(1, std::min(generation.sampling.max_tokens, limit / 2));
    generation.prompt.erase(generation.prompt.begin(), generation.prompt.end() - keep);
  }

  static void Fill(const models::GenerationResult& result, wire::ExpertReplyT& reply) {
    reply.text = result.text;
    reply.prompt_tokens = static_cast<uint32_t>(result.prompt_tokens);
    reply.completion_tokens = static_cast<uint32_t>(result.tokens.size());
    reply.confidence = result.tokens.empty() ? 1.0f : static_cast<float>(std::exp(result.logprob_sum / result.tokens.size()));
    switch (result.finish_reason) {
      case models::FinishReason::kStop:
      case models::FinishReason::kLength:
        reply.finish_reason = models::FinishReasonName(result.finish_reason);
        break;
      case models::FinishReason::kCancelled:
        reply.status = wire::StatusCode::CANCELLED;
        reply.finish_reason = "cancelled";
        break;
      case models::FinishReason::kError:
        reply.status = wire::StatusCode::EXPERT_FAILED;
        reply.error = "mamba: " + result.error;
        reply.finish_reason = "error";
        break;
    }
  }

  config::ExpertConfig config_;
  std::unique_ptr<models::MambaModel> model_;
  std::unique_ptr<models::Tokenizer> tokenizer_;
  std::vector<int32_t> end_tokens_;
  std::string model_name_;
  std::unique_ptr<models::Batcher> batcher_;  // last: stops before the model and tokenizer go
};

}  // namespace

std::string RenderPrompt(const wire::ExpertRequestT& request) {
  std::string text;
  if (!request.context.empty()) {
    text += "Context:\n";
    for (size_t i = 0; i < request.context.size(); ++i) {
      const wire::PassageT& passage = *request.context[i];
      text.append("[").append(std::to_string(i + 1)).append("] ").append(passage.text);
      if (!passage.source.empty()) text.append(" (source: ").append(passage.source).append(")");
      text.append("\n");
    }
    text += "\n";
  }
  if (!IsChat(request)) return text + request.prompt;
  for (const auto& message : request.messages) {
    if (message->role == "system") text += message->content + "\n\n";
  }
  for (const auto& message : request.messages) {
    if (message->role == "user") text += "User: " + message->content + "\n";
    if (message->role == "assistant") text += "Assistant: " + message->content + "\n";
  }
  return text + "Assistant:";
}

std::unique_ptr<Expert> MakeMambaExpert(const config::ExpertConfig& expert_config) {
  return std::make_unique<MambaExpert>(expert_config);
}

}  // namespace thalamus::experts
