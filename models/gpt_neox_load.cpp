// Reading GPT-NeoX checkpoints: config.json (both rotary namings) and the weights.
#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "models/checkpoint_files.h"
#include "models/gpt_neox.h"
#include "models/safetensors.h"

namespace thalamus::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Pythia's config.json says rotary_pct and rotary_emb_base; transformers >= 4.5x
// writes rope_parameters {rope_theta, partial_rotary_factor}, which win when both exist.
void ReadRotary(const ConfigReader& in, const json& root, GptNeoxConfig& config) {
  config.rotary_pct = in.Number(root, "rotary_pct", 0.25);
  config.rotary_emb_base = in.Number(root, "rotary_emb_base", 10000.0);
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!ConfigReader::Present(root, key)) continue;
    const json& rope = root[key];
    if (!rope.is_object()) throw in.Error(key, "must be an object");
    in.Expect(rope, "rope_type", "default", "only the default rotary embedding");
    in.Expect(rope, "type", "default", "only the default rotary embedding");
    config.rotary_pct = in.Number(rope, "partial_rotary_factor", config.rotary_pct);
    config.rotary_emb_base = in.Number(rope, "rope_theta", config.rotary_emb_base);
  }
  if (config.rotary_pct < 0 || config.rotary_pct > 1) throw in.Error("rotary_pct", "must be in [0, 1]");
  if (config.rotary_emb_base <= 0) throw in.Error("rotary_emb_base", "must be > 0");
}

// Loads each tensor once by name, checking its shape; leftovers (a wrong
// num_hidden_layers, another architecture) are reported.
class WeightReader {
 public:
  WeightReader(const SafeTensors& tensors, torch::ScalarType dtype) : tensors_(tensors), dtype_(dtype) {}

  torch::Tensor Load(const std::string& name, const std::vector<int64_t>& shape,
                     std::optional<torch::ScalarType> dtype = {}) {
    if (!tensors_.Has(name)) {
      throw std::runtime_error("gpt_neox: " + tensors_.source() + ": missing tensor '" + name + "' (expected shape " +
                               ShapeString(shape) + ")");
    }
    used_.insert(name);
    return tensors_.Load(name, shape, dtype.value_or(dtype_));
  }
  torch::Tensor Optional(bool present, const std::string& name, const std::vector<int64_t>& shape) {
    return present ? Load(name, shape) : torch::Tensor();
  }
  void CheckAllUsed(const GptNeoxConfig& config) const {
    for (const std::string& name : tensors_.Names()) {
      // Buffers older transformers saved: the causal mask and rotary frequencies.
      if (name.ends_with(".attention.bias") || name.ends_with(".attention.masked_bias") ||
          name.ends_with(".rotary_emb.inv_freq"))
        continue;
      if (!used_.count(name)) {
        throw std::runtime_error("gpt_neox: " + tensors_.source() + ": unexpected tensor '" + name +
                                 "' (config: num_hidden_layers " + std::to_string(config.num_layers) +
                                 ", attention_bias " + (config.attention_bias ? "true" : "false") + ")");
      }
    }
  }

 private:
  const SafeTensors& tensors_;
  torch::ScalarType dtype_;
  std::set<std::string> used_;
};

GptNeoxModel::Layer ReadLayer(WeightReader& reader, const GptNeoxConfig& c, int64_t index) {
  const std::string prefix = "gpt_neox.layers." + std::to_string(index) + ".";
  const int64_t hidden = c.hidden_size, inner = c.intermediate_size;
  GptNeoxModel::Layer layer;
  layer.ln1_weight = reader.Load(prefix + "input_layernorm.weight", {hidden}, torch::kFloat32);
  layer.ln1_bias = reader.Load(prefix + "input_layernorm.bias", {hidden}, torch::kFloat32);
  layer.ln2_weight = reader.Load(prefix + "post_attention_layernorm.weight", {hidden}, torch::kFloat32);
  layer.ln2_bias = reader.Load(prefix + "post_attention_layernorm.bias", {hidden}, torch::kFloat32);
  layer.qkv = reader.Load(prefix + "attention.query_key_value.weight", {3 * hidden, hidden});
  layer.qkv_bias = reader.Optional(c.attention_bias, prefix + "attention.query_key_value.bias", {3 * hidden});
  layer.dense = reader.Load(prefix + "attention.dense.weight", {hidden, hidden});
  layer.dense_bias = reader.Optional(c.attention_bias, prefix + "attention.dense.bias", {hidden});
  layer.fc_in = reader.Load(prefix + "mlp.dense_h_to_4h.weight", {inner, hidden});
  layer.fc_in_bias = reader.Load(prefix + "mlp.dense_h_to_4h.bias", {inner});
  layer.fc_out = reader.Load(prefix + "mlp.dense_4h_to_h.weight", {hidden, inner});
  layer.fc_out_bias = reader.Load(prefix + "mlp.dense_4h_to_h.bias", {hidden});
  return layer;
}

}  // namespace

GptNeoxConfig GptNeoxConfig::FromFile(const std::string& path) {
  const json root = ReadJsonObject(path, "gpt_neox");
  ConfigReader in("gpt_neox", path);
  in.Expect(root, "model_type", "gpt_neox", "this is a GPT-NeoX implementation");
  in.Expect(root, "hidden_act", "gelu", "only the exact GELU of Pythia and Dolly");
  GptNeoxConfig config;
  config.hidden_size = in.Int(root, "hidden_size");
  config.num_layers = in.Int(root, "num_hidden_layers");
  config.num_heads = in.Int(root, "num_attention_heads");
  config.intermediate_size = in.Int(root, "intermediate_size", 4 * config.hidden_size);
  config.vocab_size = in.Int(root, "vocab_size");
  config.max_position_embeddings = in.Int(root, "max_position_embeddings", 2048);
  config.layer_norm_eps = in.Number(root, "layer_norm_eps", 1e-5);
  config.use_parallel_residual = in.Bool(root, "use_parallel_residual", true);
  config.attention_bias = in.Bool(root, "attention_bias", true);
  config.tie_word_embeddings = in.Bool(root, "tie_word_embeddings", false);
  ReadRotary(in, root, config);
  if (ConfigReader::Present(root, "eos_token_id")) {
    const json& eos = root["eos_token_id"];
    if (eos.is_number_integer())
      config.eos_token_id = eos.get<int32_t>();
    else if (eos.is_array() && !eos.empty() && eos[0].is_number_integer())
      config.eos_token_id = eos[0].get<int32_t>();
  }
  config.Validate("gpt_neox: " + path);
  return config;
}

void GptNeoxConfig::Validate(const std::string& where) const {
  auto fail = [&](const std::string& message) { throw std::runtime_error(where + ": " + message); };
  if (hidden_size < 1 || num_layers < 1 || num_heads < 1 || intermediate_size < 1 || vocab_size < 1) {
    fail("hidden_size, num_hidden_layers, num_attention_heads, intermediate_size and vocab_size must be >= 1");
  }
  if (hidden_size % num_heads != 0) {
    fail("hidden_size " + std::to_string(hidden_size) + " is not divisible by num_attention_heads " +
         std::to_string(num_heads));
  }
  if (rotary_dims() % 2 != 0) {
    fail("rotary_pct " + std::to_string(rotary_pct) + " gives an odd number of rotary dims (" +
         std::to_string(rotary_dims()) + ")");
  }
  if (max_position_embeddings < 1) fail("max_position_embeddings must be >= 1");
}

std::unique_ptr<GptNeoxModel> GptNeoxModel::Load(const std::string& dir, torch::ScalarType dtype, int64_t max_context) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16)
    throw std::runtime_error("gpt_neox: dtype must be float32 or bfloat16");
  CheckCheckpointDirectory(dir, "gpt_neox");
  GptNeoxConfig config = GptNeoxConfig::FromFile((fs::path(dir) / "config.json").string());
  SafeTensors tensors = SafeTensors::OpenDirectory(dir);
  WeightReader reader(tensors, dtype);
  const int64_t vocab = config.vocab_size, hidden = config.hidden_size;
  Weights weights;
  weights.embed_in = reader.Load("gpt_neox.embed_in.weight", {vocab, hidden});
  for (int64_t i = 0; i < config.num_layers; ++i) weights.layers.push_back(ReadLayer(reader, config, i));
  weights.final_ln_weight = reader.Load("gpt_neox.final_layer_norm.weight", {hidden}, torch::kFloat32);
  weights.final_ln_bias = reader.Load("gpt_neox.final_layer_norm.bias", {hidden}, torch::kFloat32);
  if (config.tie_word_embeddings && !tensors.Has("embed_out.weight")) {
    weights.embed_out = weights.embed_in;
  } else {
    weights.embed_out = reader.Load("embed_out.weight", {vocab, hidden});
  }
  reader.CheckAllUsed(config);
  return std::make_unique<GptNeoxModel>(config, std::move(weights), max_context);
}

std::unique_ptr<GptNeoxModel> GptNeoxModel::Random(const GptNeoxConfig& c, uint64_t seed, torch::ScalarType dtype) {
  c.Validate("gpt_neox: random config");
  torch::manual_seed(seed);
  auto normal = [&](std::vector<int64_t> shape, double scale) { return (torch::randn(shape) * scale).to(dtype); };
  const int64_t hidden = c.hidden_size, inner = c.intermediate_size;
  Weights weights;
  weights.embed_in = normal({c.vocab_size, hidden}, 0.02);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer layer;
    layer.ln1_weight = torch::ones({hidden});
    layer.ln1_bias = torch::zeros({hidden});
    layer.ln2_weight = torch::ones({hidden});
    layer.ln2_bias = torch::zeros({hidden});
    layer.qkv = normal({3 * hidden, hidden}, 1.0 / std::sqrt(hidden));
    layer.dense = normal({hidden, hidden}, 1.0 / std::sqrt(hidden));
    if (c.attention_bias) {
      layer.qkv_bias = torch::zeros({3 * hidden}, dtype);
      layer.dense_bias = torch::zeros({hidden}, dtype);
    }
    layer.fc_in = normal({inner, hidden}, 1.0 / std::sqrt(hidden));
    layer.fc_in_bias = torch::zeros({inner}, dtype);
    layer.fc_out = normal({hidden, inner}, 1.0 / std::sqrt(inner));
    layer.fc_out_bias = torch::zeros({hidden}, dtype);
    weights.layers.push_back(std::move(layer));
  }
  weights.final_ln_weight = torch::ones({hidden});
  weights.final_ln_bias = torch::zeros({hidden});
  weights.embed_out = c.tie_word_embeddings ? weights.embed_in : normal({c.vocab_size, hidden}, 0.02);
  return std::make_unique<GptNeoxModel>(c, std::move(weights));
}

}  // namespace thalamus::models
