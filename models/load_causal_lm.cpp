#include "models/load_causal_lm.h"

#include <filesystem>
#include <stdexcept>

#include "models/checkpoint_files.h"
#include "models/gpt_neox.h"
#include "models/mamba.h"

namespace thalamus::models {

LoadedCausalLM LoadCausalLM(const std::string& dir, torch::ScalarType dtype, torch::Device device) {
  const nlohmann::json config = ReadJsonObject((std::filesystem::path(dir) / "config.json").string(), "model");
  const std::string model_type =
      config.contains("model_type") && config["model_type"].is_string() ? config["model_type"].get<std::string>() : "";
  LoadedCausalLM loaded;
  if (model_type == "gpt_neox") {
    if (device != torch::kCPU) throw std::invalid_argument("GPT-NeoX models run on the CPU only");
    auto model = GptNeoxModel::Load(dir, dtype);
    loaded.eos_token_id = model->config().eos_token_id;
    loaded.model = std::move(model);
    loaded.architecture = "gpt_neox";
  } else if (model_type == "mamba" || (model_type.empty() && config.contains("d_model"))) {
    auto model = MambaModel::Load(dir, dtype, device);
    loaded.eos_token_id = model->config().eos_token_id;
    loaded.model = std::move(model);
    loaded.architecture = "mamba";
  } else {
    throw std::runtime_error((std::filesystem::path(dir) / "config.json").string() + ": model_type '" + model_type +
                             "' is not supported (mamba, gpt_neox)");
  }
  return loaded;
}

}  // namespace thalamus::models
