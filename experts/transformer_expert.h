// The `transformer` expert: a GPT-NeoX language model (Pythia, Dolly;
// models/gpt_neox.h) with a KV cache, answering completion prompts and chats.
// Private to experts/.
//
// Config and prompt template as the mamba expert (mamba_expert.h: model,
// tokenizer, dtype, threads, max_batch, context_policy; RenderPrompt), on CPU.
// max_context is the model's max_position_embeddings, or the config's
// max_context when smaller; a prompt that leaves no room to generate is
// answered CONTEXT_TOO_LONG (context_policy: error) or loses its beginning
// (truncate_left). Concurrent Serve calls share batched decode steps through
// one models::Batcher, so set `concurrency` up to `max_batch`.
#pragma once

#include <memory>

#include "experts/expert.h"

namespace thalamus::experts {

// Throws std::runtime_error naming the expert when the model cannot be loaded.
std::unique_ptr<Expert> MakeTransformerExpert(const config::ExpertConfig& expert_config);

}  // namespace thalamus::experts
