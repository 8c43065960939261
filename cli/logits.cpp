// thalamus logits: the logits a Mamba or GPT-NeoX checkpoint gives every position of a token list.
#include <cstdio>
#include <iostream>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "models/load_causal_lm.h"

namespace thalamus::cli {

int RunLogits(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus logits: print the logits of every position as JSON");
  options.add_options()("help,h", "show this help")(
      "model", po::value<std::string>(),
      "checkpoint directory, Mamba or GPT-NeoX: config.json + model.safetensors (required)")(
      "ids", po::value<std::string>(), "comma-separated token ids, e.g. 1,2,3 (required)")(
      "dtype", po::value<std::string>()->default_value("float32"), "float32 or bfloat16")(
      "threads", po::value<int>(), "compute threads (default: all cores)");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus logits", options, vars, [&] {
        if (!vars.count("model") || !vars.count("ids")) throw po::error("--model and --ids are required");
      })) {
    return *exit_code;
  }
  try {
    std::vector<int32_t> ids = ParseIdList(vars["ids"].as<std::string>());
    if (vars.count("threads")) models::SetComputeThreads(vars["threads"].as<int>());
    models::LoadedCausalLM loaded =
        models::LoadCausalLM(vars["model"].as<std::string>(), models::DTypeFromName(vars["dtype"].as<std::string>()));
    const models::CausalLM* model = loaded.model.get();
    auto state = model->NewState(1);
    torch::Tensor logits = model->Prefill(*state, 0, ids, /*all_positions=*/true).contiguous();
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t t = 0; t < logits.size(0); ++t) {
      const float* row = logits[t].data_ptr<float>();
      rows.push_back(std::vector<float>(row, row + logits.size(1)));
    }
    nlohmann::json out = {{"ids", ids}, {"vocab_size", model->VocabSize()}, {"logits", std::move(rows)}};
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus logits: %s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::cli
