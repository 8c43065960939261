#include "models/generate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

namespace thalamus::models {

namespace {

double LogProbability(std::span<const float> logits, int32_t token) {
  float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float logit : logits) sum += std::exp(static_cast<double>(logit - max));
  return static_cast<double>(logits[token] - max) - std::log(sum);
}

}  // namespace

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "error";
}

struct Generator::Sequence {
  Sequence(Id id, GenerationRequest request, const Tokenizer& tokenizer)
      : id(id), request(std::move(request)), decoder(tokenizer) {
    result.prompt_tokens = static_cast<int64_t>(this->request.prompt.size());
  }

  bool Cancelled() const { return request.cancelled && request.cancelled(); }

  // Shows text[emitted, upto) to the client.
  void Emit(size_t upto) {
    if (upto <= emitted) return;
    if (request.on_text) request.on_text(std::string_view(text).substr(emitted, upto - emitted));
    emitted = upto;
  }

  // The longest end of the text that is the start of a stop sequence: it may
  // still become one, so it is not shown yet.
  size_t HeldBack() const {
    size_t held = 0;
    for (const std::string& stop : request.sampling.stop) {
      for (size_t length = std::min(stop.size() - 1, text.size()); length > held; --length) {
        if (std::string_view(text).ends_with(std::string_view(stop).substr(0, length))) {
          held = length;
          break;
        }
      }
    }
    return held;
  }

  // Where the first stop sequence starts, looking only where new text (from
  // byte `fresh`) could have completed one; npos when none.
  size_t FindStop(size_t fresh) const {
    size_t first = std::string::npos;
    for (const std::string& stop : request.sampling.stop) {
      size_t from = fresh >= stop.size() ? fresh - stop.size() + 1 : 0;
      first = std::min(first, text.find(stop, from));
    }
    return first;
  }

  // Ends the sequence, showing whatever was held back.
  void Finish(FinishReason reason) {
    text += decoder.Finish();
    Emit(text.size());
    result.text = text;
    result.finish_reason = reason;
  }

  void Fail(const std::string& error) {
    result.text = text;
    result.finish_reason = FinishReason::kError;
    result.error = error;
  }

  Id id;
  GenerationRequest request;
  std::unique_ptr<Sampler> sampler;
  StreamDecoder decoder;
  std::string text;         // decoded so far
  size_t emitted = 0;       // bytes of text shown through on_text
  int32_t next_token = -1;  // sampled, not yet fed to the model
  GenerationResult result;
};

Generator::Generator(const CausalLM& model, Tokenizer tokenizer, int64_t max_batch, int64_t max_context)
    : model_(model), tokenizer_(std::move(tokenizer)), max_batch_(max_batch) {
  if (max_batch < 1) throw std::invalid_argument("max_batch must be >= 1");
  if (max_context < 0) throw std::invalid_argument("max_context must be >= 0");
  const int64_t model_limit = model.MaxContext();
  max_context_ = model_limit == 0 ? max_context : max_context == 0 ? model_limit : std::min(model_limit, max_context);
  state_ = model.NewState(max_batch);
}

Generator::~Generator() = default;

Generator::Id Generator::Add(GenerationRequest request) {
  Id id = next_id_++;
  waiting_.push_back(std::make_unique<Sequence>(id, std::move(request), tokenizer_));
  return id;
}

bool Generator::Advance(Sequence& sequence, std::span<const float> logits) {
  const int32_t token = sequence.sampler->Sample(logits);
  const SamplingParams& params = sequence.request.sampling;
  if (std::find(params.stop_tokens.begin(), params.stop_tokens.end(), token) != params.stop_tokens.end()) {
    sequence.Finish(FinishReason::kStop);
    return false;
  }
  GenerationResult& result = sequence.result;
  result.tokens.push_back(token);
  result.logprob_sum += LogProbability(logits, token);
  const size_t fresh = sequence.text.size();
  sequence.text += sequence.decoder.Push(token);
  const int64_t generated = static_cast<int64_t>(result.tokens.size());
  const bool at_limit =
      generated >= params.max_tokens || (max_context_ > 0 && result.prompt_tokens + generated >= max_context_);
  if (at_limit) sequence.text += sequence.decoder.Finish();

  if (size_t stop = sequence.FindStop(fresh); stop != std::string::npos) {
    sequence.text.resize(stop);
    sequence.Emit(stop);
    result.text = sequence.text;
    result.finish_reason = FinishReason::kStop;
    return false;
  }
  if (at_limit) {
    sequence.Finish(FinishReason::kLength);
    return false;
  }
  sequence.Emit(sequence.text.size() - sequence.HeldBack());
  sequence.next_token = token;
  return true;
}

void Generator::Admit(std::vector<std::pair<Id, GenerationResult>>& finished) {
  while (!waiting_.empty() && static_cast<int64_t>(active_.size()) < max_batch_) {
    std::unique_ptr<Sequence> sequence = std::move(waiting_.front());
    waiting_.pop_front();
    try {
      const std::vector<int32_t>& prompt = sequence->request.prompt;
      sequence->sampler = std::make_unique<Sampler>(sequence->request.sampling);
      if (prompt.empty()) throw std::invalid_argument("the prompt is empty");
      if (max_context_ > 0 && static_cast<int64_t>(prompt.size()) >= max_context_) {
        throw std::invalid_argument("the prompt has " + std::to_string(prompt.size()) +
                                    " tokens; the context limit is " + std::to_string(max_context_));
      }
      bool live = false;
      if (sequence->Cancelled()) {
        sequence->Finish(FinishReason::kCancelled);
      } else if (sequence->request.sampling.max_tokens == 0) {
        sequence->Finish(FinishReason::kLength);
      } else {
        const int64_t slot = static_cast<int64_t>(active_.size());
        torch::Tensor logits = model_.Prefill(*state_, slot, prompt, false).to(torch::kCPU).contiguous();
        live = Advance(*sequence, {logits.data_ptr<float>(), static_cast<size_t>(logits.size(1))});
      }
      if (live) {
        active_.push_back(std::move(sequence));
        continue;
      }
    } catch (const std::exception& e) {
      sequence->Fail(e.what());
    }
    finished.emplace_back(sequence->id, std::move(sequence->result));
  }
}

void Generator::Retire(size_t slot, std::vector<std::pair<Id, GenerationResult>>& finished) {
  finished.emplace_back(active_[slot]->id, std::move(active_[slot]->result));
  const size_t last = active_.size() - 1;
  if (slot != last) {
    model_.CopySlot(*state_, static_cast<int64_t>(last), static_cast<int64_t>(slot));
    active_[slot] = std::move(active_[last]);
  }
  active_.pop_back();
}

std::vector<std::pair<Generator::Id, GenerationResult>> Generator::Step() {
  std::vector<std::pair<Id, GenerationResult>> finished;
  Admit(finished);
  std::vector<bool> done(active_.size(), false);
  std::vector<int32_t> tokens;
  for (size_t slot = 0; slot < active_.size(); ++slot) {
    if (active_[slot]->Cancelled()) {
      active_[slot]->Finish(FinishReason::kCancelled);
      done[slot] = true;
    }
    tokens.push_back(active_[slot]->next_token);
  }
  // Cancelled sequences still take their step: slots stay aligned and the cost is one row.
  if (!tokens.empty() && std::find(done.begin(), done.end(), false) != done.end()) {
    try {
      torch::Tensor logits = model_.Step(*state_, tokens).to(torch::kCPU).contiguous();
      const size_t vocab = static_cast<size_t>(logits.size(1));
      for (size_t slot = 0; slot < active_.size(); ++slot) {
        if (done[slot]) continue;
        Sequence& sequence = *active_[slot];
        try {
          done[slot] = !Advance(sequence, {logits.data_ptr<float>() + slot * vocab, vocab});
        } catch (const std::exception& e) {
          sequence.Fail(e.what());
          done[slot] = true;
        }
      }
    } catch (const std::exception& e) {
      for (size_t slot = 0; slot < active_.size(); ++slot) {
        if (!done[slot]) active_[slot]->Fail(std::string("model step failed: ") + e.what());
        done[slot] = true;
      }
    }
  }
  // From the end, so the sequence moved into a freed slot has been handled already.
  for (size_t slot = active_.size(); slot-- > 0;) {
    if (done[slot]) Retire(slot, finished);
  }
  return finished;
}

std::vector<int32_t> EndOfTextTokens(const Tokenizer& tokenizer, std::optional<int32_t> configured_eos) {
  if (configured_eos) return {*configured_eos};
  if (std::optional<int32_t> id = tokenizer.TokenId("<|endoftext|>")) return {*id};
  return {};
}

std::vector<GenerationResult> Generate(const CausalLM& model, const Tokenizer& tokenizer,
                                       std::vector<GenerationRequest> requests, int64_t max_batch) {
  Generator generator(model, tokenizer, max_batch);
  std::map<Generator::Id, size_t> order;
  for (size_t i = 0; i < requests.size(); ++i) order[generator.Add(std::move(requests[i]))] = i;
  std::vector<GenerationResult> results(requests.size());
  while (!generator.idle()) {
    for (auto& [id, result] : generator.Step()) results[order.at(id)] = std::move(result);
  }
  return results;
}

}  // namespace thalamus::models
