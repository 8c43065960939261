// The `echo` expert: answers with its prefix followed by the prompt (or the
// last user message). Options: delay_ms (spread over the streamed words),
// failure_rate (fraction of requests answered EXPERT_FAILED). For tests and
// benchmarks of everything around the models.
#pragma once

#include <memory>

#include "experts/expert.h"

namespace thalamus::experts {

std::unique_ptr<Expert> MakeEchoExpert(const config::ExpertConfig& expert_config);

}  // namespace thalamus::experts
