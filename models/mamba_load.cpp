// Reading Mamba checkpoints: config.json in both namings and the weights.
#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "models/checkpoint_files.h"
#include "models/mamba.h"
#include "models/safetensors.h"

namespace thalamus::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// dt_rank: "auto" (ceil(d_model / 16)), absent (the same) or a positive integer.
int64_t DtRank(const ConfigReader& in, const json& object, const std::string& key, int64_t d_model) {
  if (!object.contains(key) || object[key] == "auto") return (d_model + 15) / 16;
  return in.Int(object, key);
}

// state-spaces/mamba: MambaConfig of mamba_ssm (d_model, n_layer, ssm_cfg, ...).
void ReadStateSpaces(const ConfigReader& in, const json& root, MambaConfig& config) {
  config.d_model = in.Int(root, "d_model");
  config.n_layer = in.Int(root, "n_layer");
  int64_t vocab = in.Int(root, "vocab_size");
  int64_t multiple = in.Int(root, "pad_vocab_size_multiple", 8);
  config.vocab_size = (vocab + multiple - 1) / multiple * multiple;
  in.Expect(root, "rms_norm", true, "only RMSNorm blocks");
  in.Expect(root, "d_intermediate", json::number_integer_t{0}, "no MLP between mixers");
  if (root.contains("attn_layer_idx") && !root["attn_layer_idx"].empty())
    throw in.Error("attn_layer_idx", "hybrid attention layers are not supported");
  config.norm_eps = in.Number(root, "norm_epsilon", 1e-5);
  config.tie_embeddings = in.Bool(root, "tie_embeddings", true);
  const json ssm = root.contains("ssm_cfg") && root["ssm_cfg"].is_object() ? root["ssm_cfg"] : json::object();
  in.Expect(ssm, "layer", "Mamba1", "this is a Mamba-1 implementation");
  config.d_state = in.Int(ssm, "d_state", 16);
  config.d_conv = in.Int(ssm, "d_conv", 4);
  config.expand = in.Int(ssm, "expand", 2);
  config.d_inner = config.expand * config.d_model;
  config.dt_rank = DtRank(in, ssm, "dt_rank", config.d_model);
  config.bias = in.Bool(ssm, "bias", false);
  config.conv_bias = in.Bool(ssm, "conv_bias", true);
}

// transformers' MambaConfig (hidden_size, state_size, num_hidden_layers, ...).
void ReadTransformers(const ConfigReader& in, const json& root, MambaConfig& config) {
  in.Expect(root, "model_type", "mamba", "only Mamba-1 (model_type mamba)");
  in.Expect(root, "hidden_act", "silu", "Mamba uses SiLU");
  config.d_model = in.Int(root, "hidden_size");
  config.n_layer = in.Int(root, "num_hidden_layers");
  config.vocab_size = in.Int(root, "vocab_size");  // transformers sizes the embedding by it as is
  config.d_state = in.Int(root, "state_size", 16);
  config.d_conv = in.Int(root, "conv_kernel", 4);
  config.expand = in.Int(root, "expand", 2);
  config.d_inner = in.Int(root, "intermediate_size", config.expand * config.d_model);
  config.dt_rank = DtRank(in, root, "time_step_rank", config.d_model);
  config.bias = in.Bool(root, "use_bias", false);
  config.conv_bias = in.Bool(root, "use_conv_bias", true);
  config.norm_eps = in.Number(root, "layer_norm_epsilon", 1e-5);
  config.tie_embeddings = in.Bool(root, "tie_word_embeddings", true);
  if (root.contains("eos_token_id") && root["eos_token_id"].is_number_integer()) {
    config.eos_token_id = root["eos_token_id"].get<int32_t>();
  }
}

// Loads each tensor once by name, checking its shape, and remembers which
// names were used so leftovers (a wrong n_layer, a different architecture) are reported.
class WeightReader {
 public:
  WeightReader(const SafeTensors& tensors, torch::ScalarType dtype, torch::Device device)
      : tensors_(tensors), dtype_(dtype), device_(device) {}

  torch::Tensor Load(const std::string& name, const std::vector<int64_t>& shape,
                     std::optional<torch::ScalarType> dtype = {}) {
    used_.insert(name);
    return tensors_.Load(name, shape, dtype.value_or(dtype_)).to(device_);
  }
  torch::Tensor Optional(bool present, const std::string& name, const std::vector<int64_t>& shape) {
    return present ? Load(name, shape) : torch::Tensor();
  }
  void CheckAllUsed(const MambaConfig& config) const {
    for (const std::string& name : tensors_.Names()) {
      if (!used_.count(name)) {
        throw std::runtime_error("mamba: " + tensors_.source() + ": unexpected tensor '" + name +
                                 "' (config: n_layer " + std::to_string(config.n_layer) + ", bias " +
                                 (config.bias ? "true" : "false") + ", conv_bias " +
                                 (config.conv_bias ? "true" : "false") + ")");
      }
    }
  }

 private:
  const SafeTensors& tensors_;
  torch::ScalarType dtype_;
  torch::Device device_;
  std::set<std::string> used_;
};

MambaModel::Layer ReadLayer(WeightReader& reader, const MambaConfig& c, int64_t index) {
  const std::string mixer = "backbone.layers." + std::to_string(index) + ".mixer.";
  MambaModel::Layer layer;
  layer.norm = reader.Load("backbone.layers." + std::to_string(index) + ".norm.weight", {c.d_model}, torch::kFloat32);
  layer.in_proj = reader.Load(mixer + "in_proj.weight", {2 * c.d_inner, c.d_model});
  layer.in_proj_bias = reader.Optional(c.bias, mixer + "in_proj.bias", {2 * c.d_inner});
  layer.conv_weight = reader.Load(mixer + "conv1d.weight", {c.d_inner, 1, c.d_conv}).reshape({c.d_inner, c.d_conv});
  layer.conv_bias = reader.Optional(c.conv_bias, mixer + "conv1d.bias", {c.d_inner});
  layer.x_proj = reader.Load(mixer + "x_proj.weight", {c.dt_rank + 2 * c.d_state, c.d_inner});
  layer.dt_proj = reader.Load(mixer + "dt_proj.weight", {c.d_inner, c.dt_rank});
  layer.dt_bias = reader.Load(mixer + "dt_proj.bias", {c.d_inner}, torch::kFloat32);
  layer.A = -torch::exp(reader.Load(mixer + "A_log", {c.d_inner, c.d_state}, torch::kFloat32));
  layer.D = reader.Load(mixer + "D", {c.d_inner}, torch::kFloat32);
  layer.out_proj = reader.Load(mixer + "out_proj.weight", {c.d_model, c.d_inner});
  layer.out_proj_bias = reader.Optional(c.bias, mixer + "out_proj.bias", {c.d_model});
  return layer;
}

}  // namespace

MambaConfig MambaConfig::FromFile(const std::string& path) {
  const json root = ReadJsonObject(path, "mamba");
  const ConfigReader reader("mamba", path);
  MambaConfig config;
  if (root.contains("d_model")) {
    ReadStateSpaces(reader, root, config);
  } else if (root.contains("hidden_size")) {
    ReadTransformers(reader, root, config);
  } else {
    throw std::runtime_error("mamba: " + path +
                             ": neither a state-spaces (d_model) nor a transformers (hidden_size) Mamba config");
  }
  return config;
}

std::unique_ptr<MambaModel> MambaModel::Load(const std::string& dir, torch::ScalarType dtype, torch::Device device) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16)
    throw std::runtime_error("mamba: dtype must be float32 or bfloat16");
  CheckCheckpointDirectory(dir, "mamba");
  MambaConfig config = MambaConfig::FromFile((fs::path(dir) / "config.json").string());
  SafeTensors tensors = SafeTensors::OpenDirectory(dir);
  WeightReader reader(tensors, dtype, device);

  const bool state_spaces = tensors.Has("backbone.embedding.weight");
  if (!state_spaces && !tensors.Has("backbone.embeddings.weight")) {
    throw std::runtime_error("mamba: " + tensors.source() +
                             ": no 'backbone.embedding.weight' (state-spaces) or "
                             "'backbone.embeddings.weight' (transformers) tensor");
  }
  Weights weights;
  weights.embedding = reader.Load(state_spaces ? "backbone.embedding.weight" : "backbone.embeddings.weight",
                                  {config.vocab_size, config.d_model});
  for (int64_t i = 0; i < config.n_layer; ++i) weights.layers.push_back(ReadLayer(reader, config, i));
  weights.norm_f = reader.Load("backbone.norm_f.weight", {config.d_model}, torch::kFloat32);
  if (tensors.Has("lm_head.weight") || !config.tie_embeddings) {
    weights.lm_head = reader.Load("lm_head.weight", {config.vocab_size, config.d_model});
  } else {
    weights.lm_head = weights.embedding;
  }
  reader.CheckAllUsed(config);
  return std::make_unique<MambaModel>(config, std::move(weights));
}

std::unique_ptr<MambaModel> MambaModel::Random(const MambaConfig& c, uint64_t seed, torch::ScalarType dtype,
                                               torch::Device device) {
  torch::manual_seed(seed);
  auto normal = [&](std::vector<int64_t> shape, double scale) { return (torch::randn(shape) * scale).to(dtype); };
  Weights weights;
  weights.embedding = normal({c.vocab_size, c.d_model}, 0.02);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    Layer layer;
    layer.norm = torch::ones({c.d_model});
    layer.in_proj = normal({2 * c.d_inner, c.d_model}, 1.0 / std::sqrt(c.d_model));
    layer.conv_weight = normal({c.d_inner, c.d_conv}, 0.5);
    if (c.conv_bias) layer.conv_bias = normal({c.d_inner}, 0.1);
    layer.x_proj = normal({c.dt_rank + 2 * c.d_state, c.d_inner}, 1.0 / std::sqrt(c.d_inner));
    layer.dt_proj = normal({c.d_inner, c.dt_rank}, 1.0 / std::sqrt(c.dt_rank));
    layer.dt_bias = torch::full({c.d_inner}, -4.0f);
    layer.A = -torch::arange(1, c.d_state + 1, torch::kFloat32).repeat({c.d_inner, 1});
    layer.D = torch::ones({c.d_inner});
    layer.out_proj = normal({c.d_model, c.d_inner}, 1.0 / std::sqrt(c.d_inner));
    if (c.bias) {
      layer.in_proj_bias = torch::zeros({2 * c.d_inner}, dtype);
      layer.out_proj_bias = torch::zeros({c.d_model}, dtype);
    }
    weights.layers.push_back(std::move(layer));
  }
  weights.norm_f = torch::ones({c.d_model});
  auto move = [&](torch::Tensor& t) {
    if (t.defined()) t = t.to(device);
  };
  move(weights.embedding);
  move(weights.norm_f);
  for (Layer& l : weights.layers) {
    for (torch::Tensor* t : {&l.norm, &l.in_proj, &l.in_proj_bias, &l.conv_weight, &l.conv_bias, &l.x_proj, &l.dt_proj,
                             &l.dt_bias, &l.A, &l.D, &l.out_proj, &l.out_proj_bias}) {
      move(*t);
    }
  }
  weights.lm_head = weights.embedding;
  return std::make_unique<MambaModel>(c, std::move(weights));
}

}  // namespace thalamus::models
