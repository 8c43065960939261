// The language-model expert kinds, one implementation over models::CausalLM:
//   `mamba`        a Mamba-1 model (models/mamba.h), CPU or CUDA;
//   `transformer`  a GPT-NeoX model with a KV cache (models/gpt_neox.h), CPU.
// Private to experts/.
//
// Config: model (checkpoint directory, required), tokenizer (default
// <model>/tokenizer.json), device, dtype, threads, max_batch, max_context,
// context_policy (error | truncate_left). The context limit is max_context
// for mamba (0: unbounded) and, for transformer, max_position_embeddings or
// max_context when smaller. It bounds prompt plus completion: truncate_left
// drops the beginning of a prompt that would leave fewer than max_tokens
// positions (keeping at least half the limit); a prompt that still leaves no
// room is answered CONTEXT_TOO_LONG. Concurrent Serve calls share batched
// decode steps through one models::Batcher, so set `concurrency` up to
// `max_batch`.
//
// Prompt template (RenderPrompt). Retrieved passages, when the request has
// any, come first:
//   Context:
//   [1] <passage text> (source: <source>)
//   ...
//   <blank line>
// then either the completion prompt verbatim, or the chat as a transcript:
//   <system message contents, each followed by a blank line>
//   User: <content>
//   Assistant: <content>
//   ...
//   Assistant:
// and a chat stops at "\nUser:" besides the request's own stop sequences.
// Generation always stops at the end-of-text token (config eos or <|endoftext|>).
#pragma once

#include <memory>
#include <string>

#include "experts/expert.h"

namespace thalamus::experts {

// Throw std::runtime_error naming the expert when the model cannot be loaded.
std::unique_ptr<Expert> MakeMambaExpert(const config::ExpertConfig& expert_config);
std::unique_ptr<Expert> MakeTransformerExpert(const config::ExpertConfig& expert_config);

// The prompt text a request stands for, by the template above.
std::string RenderPrompt(const wire::ExpertRequestT& request);

}  // namespace thalamus::experts
