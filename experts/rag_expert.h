// The `rag` expert: serves one knowledge domain (retrieval/). A request's
// prompt (or last user message) is the query; the reply carries the top-k
// passages (text, source, domain, score, offsets, chunk id), a text answer
// listing them with citations, and the top score as confidence. When the
// block names `sources`, the index is brought up to date with them (built,
// or changed files re-read and deleted ones pruned) before the expert
// announces itself; an index rewritten by `thalamus ingest` while serving is
// picked up within seconds.
#pragma once

#include <memory>

#include "experts/expert.h"

namespace thalamus::experts {

std::unique_ptr<Expert> MakeRagExpert(const config::ExpertConfig& expert_config);

}  // namespace thalamus::experts
