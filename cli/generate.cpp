// thalamus generate: stream a continuation of a prompt from a Mamba or GPT-NeoX checkpoint.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "models/generate.h"
#include "models/load_causal_lm.h"

namespace thalamus::cli {
namespace {

models::SamplingParams SamplingFrom(const boost::program_options::variables_map& vars) {
  models::SamplingParams sampling;
  sampling.max_tokens = vars["max-tokens"].as<int64_t>();
  sampling.temperature = vars["temperature"].as<float>();
  sampling.top_k = vars["top-k"].as<int64_t>();
  sampling.top_p = vars["top-p"].as<float>();
  if (vars.count("seed")) sampling.seed = vars["seed"].as<uint64_t>();
  if (vars.count("stop")) sampling.stop = vars["stop"].as<std::vector<std::string>>();
  sampling.Validate();
  return sampling;
}

}  // namespace

int RunGenerate(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options(
      "thalamus generate: stream a continuation of --prompt to stdout (statistics on stderr)");
  options.add_options()("help,h", "show this help")(
      "model", po::value<std::string>(),
      "checkpoint directory, Mamba or GPT-NeoX: config.json + model.safetensors (required)")(
      "prompt", po::value<std::string>(), "the text to continue (required)")(
      "tokenizer", po::value<std::string>(), "tokenizer.json (default: <model>/tokenizer.json)")(
      "max-tokens", po::value<int64_t>()->default_value(128), "most tokens to generate")(
      "temperature", po::value<float>()->default_value(0.0f), "0 for greedy decoding")(
      "top-k", po::value<int64_t>()->default_value(0), "sample among the k most likely tokens (0: all)")(
      "top-p", po::value<float>()->default_value(1.0f), "sample within this much probability mass")(
      "seed", po::value<uint64_t>(), "random seed for sampling (default: random)")(
      "stop", po::value<std::vector<std::string>>(), "stop sequence (repeatable); the output ends before it")(
      "dtype", po::value<std::string>()->default_value("float32"), "float32 or bfloat16")(
      "threads", po::value<int>(), "compute threads (default: all cores)");
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus generate", options, vars, [&] {
        if (!vars.count("model") || !vars.count("prompt")) throw po::error("--model and --prompt are required");
      })) {
    return *exit_code;
  }
  try {
    const std::string model_dir = vars["model"].as<std::string>();
    const std::string tokenizer_file = vars.count("tokenizer")
                                           ? vars["tokenizer"].as<std::string>()
                                           : (std::filesystem::path(model_dir) / "tokenizer.json").string();
    models::GenerationRequest request;
    request.sampling = SamplingFrom(vars);
    if (vars.count("threads")) models::SetComputeThreads(vars["threads"].as<int>());
    models::LoadedCausalLM loaded =
        models::LoadCausalLM(model_dir, models::DTypeFromName(vars["dtype"].as<std::string>()));
    models::Tokenizer tokenizer = models::Tokenizer::FromFile(tokenizer_file);
    request.prompt = tokenizer.Encode(vars["prompt"].as<std::string>());
    request.sampling.stop_tokens = models::EndOfTextTokens(tokenizer, loaded.eos_token_id);
    request.on_text = [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    };
    auto start = std::chrono::steady_clock::now();
    std::vector<models::GenerationRequest> requests;
    requests.push_back(std::move(request));
    models::GenerationResult result = models::Generate(*loaded.model, tokenizer, std::move(requests), 1)[0];
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fputc('\n', stdout);
    if (result.finish_reason == models::FinishReason::kError) {
      std::fprintf(stderr, "thalamus generate: %s\n", result.error.c_str());
      return 1;
    }
    std::fprintf(stderr, "[%lld prompt tokens, %zu generated, finish: %s, %.2f s, %.1f tokens/s]\n",
                 static_cast<long long>(result.prompt_tokens), result.tokens.size(),
                 models::FinishReasonName(result.finish_reason), seconds, result.tokens.size() / seconds);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "thalamus generate: %s\n", e.what());
    return 1;
  }
}

}  // namespace thalamus::cli
