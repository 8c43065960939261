#include <stdexcept>

#include "experts/echo_expert.h"
#include "experts/expert.h"
#include "experts/language_model_expert.h"
#include "experts/rag_expert.h"

namespace thalamus::experts {

// Each kind's maker; kinds whose module is not built report it clearly.
std::unique_ptr<Expert> MakeExpert(const config::ExpertConfig& expert_config) {
  const std::string& kind = expert_config.kind;
  if (kind == "echo") return MakeEchoExpert(expert_config);
  if (kind == "mamba") return MakeMambaExpert(expert_config);
  if (kind == "transformer") return MakeTransformerExpert(expert_config);
  if (kind == "rag") return MakeRagExpert(expert_config);
  throw std::runtime_error("expert '" + expert_config.name + "': kind '" + kind + "' is not available in this build");
}

}  // namespace thalamus::experts
