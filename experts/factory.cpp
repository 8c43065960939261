#include <stdexcept>

#include "experts/echo_expert.h"
#include "experts/expert.h"
#include "experts/language_model_expert.h"
#include "experts/rag_expert.h"

namespace thalamus::experts {

// Each kind's maker.
std::unique_ptr<Expert> MakeExpert(const config::ExpertConfig& expert_config) {
  switch (expert_config.kind) {
    case config::ExpertKind::kEcho: return MakeEchoExpert(expert_config);
    case config::ExpertKind::kMamba: return MakeMambaExpert(expert_config);
    case config::ExpertKind::kTransformer: return MakeTransformerExpert(expert_config);
    case config::ExpertKind::kRag: return MakeRagExpert(expert_config);
  }
  throw std::logic_error("expert '" + expert_config.name + "': unhandled kind");
}

}  // namespace thalamus::experts
