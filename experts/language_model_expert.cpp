#include "experts/language_model_expert.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>

#include "models/batcher.h"
#include "models/gpt_neox.h"
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

std::string ModelName(const std::string& dir) {
  std::filesystem::path path = std::filesystem::path(dir).lexically_normal();
  std::string name = path.filename().string();
  return name.empty() ? path.parent_path().filename().string() : name;
}

// What a kind's loader hands the shared expert.
struct LoadedModel {
  std::unique_ptr<models::CausalLM> model;
  std::optional<int32_t> eos_token_id;
  int64_t context_limit = 0;  // prompt plus completion, in tokens; 0: unbounded
};
using Loader = std::function<LoadedModel(const config::ExpertConfig&)>;

torch::ScalarType ToTorch(config::DType dtype) {
  return dtype == config::DType::kBFloat16 ? torch::kBFloat16 : torch::kFloat32;
}

// Checked against this build and machine (CUDA present, GPU count), which
// the config cannot know.
torch::Device ToTorch(const config::Device& device) {
  if (device.type == config::Device::Type::kCpu) return torch::kCPU;
  return models::AvailableDevice(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device.index)));
}

models::ContextPolicy ToModels(config::ContextPolicy policy) {
  return policy == config::ContextPolicy::kTruncateLeft ? models::ContextPolicy::kTruncateLeft
                                                        : models::ContextPolicy::kError;
}

LoadedModel LoadMamba(const config::ExpertConfig& c) {
  auto model = models::MambaModel::Load(c.model, ToTorch(c.dtype), ToTorch(c.device));
  LoadedModel loaded;
  loaded.eos_token_id = model->config().eos_token_id;
  loaded.context_limit = c.max_context;
  loaded.model = std::move(model);
  return loaded;
}

LoadedModel LoadGptNeox(const config::ExpertConfig& c) {
  if (c.device.type != config::Device::Type::kCpu) {
    throw std::invalid_argument("device '" + config::Name(c.device) + "': the transformer expert runs on cpu only");
  }
  auto model = models::GptNeoxModel::Load(c.model, ToTorch(c.dtype), c.max_context);
  LoadedModel loaded;
  loaded.eos_token_id = model->config().eos_token_id;
  loaded.context_limit = model->MaxContext();
  loaded.model = std::move(model);
  return loaded;
}

class LanguageModelExpert : public Expert {
 public:
  LanguageModelExpert(const config::ExpertConfig& c, const Loader& load) : kind_(config::Name(c.kind)) {
    const std::string who = "expert '" + c.name + "': ";
    if (c.model.empty()) throw std::runtime_error(who + "kind " + kind_ + " needs `model:`, a checkpoint directory");
    if (c.max_context < 0) throw std::runtime_error(who + "max_context must be >= 0");
    std::optional<int32_t> eos;
    try {
      policy_ = ToModels(c.context_policy);
      if (c.threads > 0) models::SetComputeThreads(c.threads);
      LoadedModel loaded = load(c);
      model_ = std::move(loaded.model);
      context_limit_ = loaded.context_limit;
      eos = loaded.eos_token_id;
      const std::string tokenizer_file =
          c.tokenizer.empty() ? (std::filesystem::path(c.model) / "tokenizer.json").string() : c.tokenizer;
      tokenizer_ = std::make_unique<models::Tokenizer>(models::Tokenizer::FromFile(tokenizer_file));
    } catch (const std::exception& e) {
      throw std::runtime_error(who + e.what());
    }
    end_tokens_ = models::EndOfTextTokens(*tokenizer_, eos);
    model_name_ = ModelName(c.model);
    batcher_ = std::make_unique<models::Batcher>(*model_, *tokenizer_, std::max(1, c.max_batch), context_limit_);
  }

  std::string Model() const override { return model_name_; }

  wire::ExpertReplyT Serve(Job& job) override {
    wire::ExpertReplyT reply;
    try {
      Fill(batcher_->Submit(Prepare(job)).get(), reply);
    } catch (const RequestError& e) {
      return messages::ErrorReply(e.code, e.what());
    } catch (const std::exception& e) {
      return messages::ErrorReply(wire::StatusCode::INTERNAL, kind_ + ": " + e.what());
    }
    return reply;
  }

 private:
  models::GenerationRequest Prepare(Job& job) const {
    const wire::ExpertRequestT& request = job.request();
    for (const auto& message : request.messages) {
      if (message->role != "system" && message->role != "user" && message->role != "assistant") {
        throw RequestError(wire::StatusCode::BAD_REQUEST,
                           "unknown chat role '" + message->role + "' (system, user or assistant)");
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

  void FitContext(models::GenerationRequest& generation) const {
    if (context_limit_ <= 0) return;
    generation.prompt = models::FitPromptToContext(std::move(generation.prompt), context_limit_,
                                                   generation.sampling.max_tokens, policy_);
    const int64_t length = static_cast<int64_t>(generation.prompt.size());
    if (length >= context_limit_) {
      throw RequestError(wire::StatusCode::CONTEXT_TOO_LONG, "the prompt has " + std::to_string(length) +
                                                                 " tokens; this expert's context limit is " +
                                                                 std::to_string(context_limit_));
    }
  }

  void Fill(const models::GenerationResult& result, wire::ExpertReplyT& reply) const {
    reply.text = result.text;
    reply.prompt_tokens = static_cast<uint32_t>(result.prompt_tokens);
    reply.completion_tokens = static_cast<uint32_t>(result.tokens.size());
    reply.confidence =
        result.tokens.empty() ? 1.0f : static_cast<float>(std::exp(result.logprob_sum / result.tokens.size()));
    switch (result.finish_reason) {
      case models::FinishReason::kStop:
      case models::FinishReason::kLength: reply.finish_reason = models::FinishReasonName(result.finish_reason); break;
      case models::FinishReason::kCancelled:
        reply.status = wire::StatusCode::CANCELLED;
        reply.finish_reason = "cancelled";
        break;
      case models::FinishReason::kError:
        // The tokens generated before the failure still count (usage).
        reply.status = wire::StatusCode::EXPERT_FAILED;
        reply.error = kind_ + ": " + result.error;
        reply.finish_reason = "error";
        break;
    }
  }

  std::string kind_;
  models::ContextPolicy policy_ = models::ContextPolicy::kError;
  int64_t context_limit_ = 0;
  std::unique_ptr<models::CausalLM> model_;
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
  return std::make_unique<LanguageModelExpert>(expert_config, LoadMamba);
}

std::unique_ptr<Expert> MakeTransformerExpert(const config::ExpertConfig& expert_config) {
  return std::make_unique<LanguageModelExpert>(expert_config, LoadGptNeox);
}

}  // namespace thalamus::experts
