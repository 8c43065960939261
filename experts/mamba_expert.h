// The `mamba` expert: a Mamba-1 language model (models/mamba.h) answering
// completion prompts and chats. Private to experts/.
//
// Config: model (checkpoint directory, required), tokenizer (default
// <model>/tokenizer.json), device, dtype, threads, max_batch, max_context
// (0: unbounded), context_policy (error | truncate_left). Concurrent Serve
// calls share batched decode steps through one models::Batcher, so set
// `concurrency` up to `max_batch`.
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

// Throws std::runtime_error naming the expert when the model cannot be loaded.
std::unique_ptr<Expert> MakeMambaExpert(const config::ExpertConfig& expert_config);

// The prompt text a request stands for, by the template above.
std::string RenderPrompt(const wire::ExpertRequestT& request);

}  // namespace thalamus::experts
