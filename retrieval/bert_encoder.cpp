// The BERT encoder forward pass (Devlin et al. 2018) over LibTorch tensor ops:
// sentence-transformers ships models as PyTorch modules, so no C++ library
// runs them for us.
#include "retrieval/bert_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include "models/safetensors.h"

namespace thalamus::retrieval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kBgeEnglishInstruction = "Represent this sentence for searching relevant passages: ";
constexpr const char* kBgeChineseInstruction = "为这个句子生成表示以用于检索相关文章：";

std::runtime_error Error(const std::string& dir, const std::string& message) {
  return std::runtime_error("BERT checkpoint " + dir + ": " + message);
}

// nullopt-like: an empty object when the file is absent.
json ReadJson(const std::string& dir, const std::string& name, bool required) {
  const fs::path path = fs::path(dir) / name;
  if (!fs::exists(path)) {
    if (required) throw Error(dir, "missing " + name);
    return json::object();
  }
  std::ifstream in(path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(dir, name + ": " + e.what());
  }
}

WordPieceTokenizer LoadTokenizer(const std::string& dir) {
  const json config = ReadJson(dir, "tokenizer_config.json", false);
  WordPieceTokenizer::Options options;
  options.lowercase = config.value("do_lower_case", true);
  const json strip = config.value("strip_accents", json());
  options.strip_accents = strip.is_boolean() ? strip.get<bool>() : options.lowercase;
  const fs::path vocab = fs::path(dir) / "vocab.txt";
  if (!fs::exists(vocab)) throw Error(dir, "missing vocab.txt (only WordPiece tokenizers are supported)");
  return WordPieceTokenizer::FromVocabFile(vocab.string(), options);
}

// A name that says which model family this is: config.json's _name_or_path,
// else the directory name.
std::string ModelName(const std::string& dir, const json& config) {
  std::string name = config.value("_name_or_path", "") + " " + fs::path(dir).lexically_normal().filename().string() +
                     " " + fs::path(dir).lexically_normal().parent_path().filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  return name;
}

std::string PoolingPath(const std::string& dir) {
  const json modules = ReadJson(dir, "modules.json", false);
  if (modules.is_array()) {
    for (const json& module : modules) {
      // "sentence_transformers.models.Pooling", or the longer v5+ module paths.
      const std::string type = module.value("type", "");
      if (type.size() >= 8 && type.compare(type.size() - 8, 8, ".Pooling") == 0)
        return module.value("path", "1_Pooling");
    }
  }
  return "1_Pooling";
}

std::string Fingerprint(const at::Tensor& a, const at::Tensor& b, const std::string& extra) {
  uint64_t h = 0xCBF29CE484222325ull;
  auto mix = [&h](const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  };
  for (const at::Tensor& t : {a, b}) {
    const at::Tensor c = t.contiguous();
    mix(c.data_ptr(), c.numel() * c.element_size());
  }
  mix(extra.data(), extra.size());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace

struct BertEncoder::Model {
  struct Layer {
    at::Tensor qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b, up_w, up_b, down_w, down_b, ln2_w, ln2_b;
  };
  at::Tensor word, position, token_type, ln_w, ln_b;
  std::vector<Layer> layers;
  int64_t hidden = 0, heads = 0, max_positions = 0;
  double eps = 1e-12;
  std::string activation;

  at::Tensor Activate(const at::Tensor& x) const {
    if (activation == "gelu") return at::gelu(x);
    if (activation == "relu") return at::relu(x);
    return at::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh
  }
};

BertEncoder::BertEncoder(const std::string& dir, int threads) : dir_(dir), tokenizer_(LoadTokenizer(dir)) {
  if (threads > 0) at::set_num_threads(threads);
  const json config = ReadJson(dir, "config.json", true);
  const std::string model_type = config.value("model_type", "bert");
  if (model_type != "bert") throw Error(dir, "model_type '" + model_type + "' is not supported (only bert)");
  if (config.value("position_embedding_type", "absolute") != "absolute")
    throw Error(dir, "only absolute position embeddings are supported");
  model_ = std::make_unique<Model>();
  Model& m = *model_;
  int64_t vocab = 0, types = 0, intermediate = 0, layers = 0;
  try {
    m.hidden = config.at("hidden_size").get<int64_t>();
    m.heads = config.at("num_attention_heads").get<int64_t>();
    layers = config.at("num_hidden_layers").get<int64_t>();
    intermediate = config.at("intermediate_size").get<int64_t>();
    vocab = config.at("vocab_size").get<int64_t>();
    m.max_positions = config.value("max_position_embeddings", int64_t{512});
    types = config.value("type_vocab_size", int64_t{2});
    m.eps = config.value("layer_norm_eps", 1e-12);
    m.activation = config.value("hidden_act", std::string("gelu"));
  } catch (const json::exception& e) {
    throw Error(dir, std::string("config.json: ") + e.what());
  }
  if (m.hidden <= 0 || m.heads <= 0 || m.hidden % m.heads != 0)
    throw Error(dir, "hidden_size must be a multiple of num_attention_heads");
  if (m.activation != "gelu" && m.activation != "relu" && m.activation != "gelu_new" &&
      m.activation != "gelu_pytorch_tanh") {
    throw Error(dir, "unsupported hidden_act '" + m.activation + "'");
  }
  if (static_cast<int64_t>(tokenizer_.vocab_size()) > vocab)
    throw Error(dir, "vocab.txt is larger than the model's vocab_size");

  try {
    const models::SafeTensors weights = models::SafeTensors::OpenDirectory(dir);
    const std::string p = weights.Has("bert.embeddings.word_embeddings.weight") ? "bert." : "";
    const int64_t h = m.hidden;
    auto load = [&](const std::string& name, std::vector<int64_t> shape) { return weights.Load(p + name, shape); };
    m.word = load("embeddings.word_embeddings.weight", {vocab, h});
    m.position = load("embeddings.position_embeddings.weight", {m.max_positions, h});
    m.token_type = load("embeddings.token_type_embeddings.weight", {types, h});
    m.ln_w = load("embeddings.LayerNorm.weight", {h});
    m.ln_b = load("embeddings.LayerNorm.bias", {h});
    for (int64_t i = 0; i < layers; ++i) {
      const std::string l = "encoder.layer." + std::to_string(i) + ".";
      Model::Layer layer;
      layer.qkv_w =
          at::cat({load(l + "attention.self.query.weight", {h, h}), load(l + "attention.self.key.weight", {h, h}),
                   load(l + "attention.self.value.weight", {h, h})});
      layer.qkv_b = at::cat({load(l + "attention.self.query.bias", {h}), load(l + "attention.self.key.bias", {h}),
                             load(l + "attention.self.value.bias", {h})});
      layer.out_w = load(l + "attention.output.dense.weight", {h, h});
      layer.out_b = load(l + "attention.output.dense.bias", {h});
      layer.ln1_w = load(l + "attention.output.LayerNorm.weight", {h});
      layer.ln1_b = load(l + "attention.output.LayerNorm.bias", {h});
      layer.up_w = load(l + "intermediate.dense.weight", {intermediate, h});
      layer.up_b = load(l + "intermediate.dense.bias", {intermediate});
      layer.down_w = load(l + "output.dense.weight", {h, intermediate});
      layer.down_b = load(l + "output.dense.bias", {h});
      layer.ln2_w = load(l + "output.LayerNorm.weight", {h});
      layer.ln2_b = load(l + "output.LayerNorm.bias", {h});
      m.layers.push_back(std::move(layer));
    }
  } catch (const std::runtime_error& e) {
    throw Error(dir, e.what());
  }

  const std::string name = ModelName(dir, config);
  const bool is_bge = name.find("bge") != std::string::npos;
  // Older sentence-transformers write pooling_mode_* flags, newer ones a
  // pooling_mode name.
  const json pooling = ReadJson(dir, PoolingPath(dir) + "/config.json", false);
  const std::string mode = pooling.value("pooling_mode", std::string());
  if (mode == "cls" || pooling.value("pooling_mode_cls_token", false)) {
    pooling_ = Pooling::kCls;
  } else if (mode == "mean" || pooling.value("pooling_mode_mean_tokens", false)) {
    pooling_ = Pooling::kMean;
  } else if (pooling.empty()) {
    pooling_ = is_bge ? Pooling::kCls : Pooling::kMean;
  } else {
    throw Error(dir, "unsupported pooling (only CLS and mean pooling are implemented)");
  }

  const json st_config = ReadJson(dir, "config_sentence_transformers.json", false);
  const json prompts = st_config.value("prompts", json::object());
  if (prompts.is_object() && prompts.contains("query") && prompts["query"].is_string()) {
    query_prefix_ = prompts["query"].get<std::string>();
  } else if (is_bge) {
    query_prefix_ = name.find("-zh") != std::string::npos ? kBgeChineseInstruction : kBgeEnglishInstruction;
  }

  // max_seq_length lives in sentence_bert_config.json (older) or as the
  // tokenizer's model_max_length (newer); never beyond the position table.
  const json st_model = ReadJson(dir, "sentence_bert_config.json", false);
  const json tokenizer_config = ReadJson(dir, "tokenizer_config.json", false);
  int64_t max_length = m.max_positions;
  if (st_model.contains("max_seq_length") && st_model["max_seq_length"].is_number_integer()) {
    max_length = st_model["max_seq_length"].get<int64_t>();
  } else if (tokenizer_config.contains("model_max_length") &&
             tokenizer_config["model_max_length"].is_number_integer()) {
    max_length = std::min<int64_t>(tokenizer_config["model_max_length"].get<int64_t>(), m.max_positions);
  }
  max_length_ = static_cast<size_t>(std::min<int64_t>(max_length, m.max_positions));
  if (max_length_ < 2) throw Error(dir, "max_seq_length must be at least 2");

  id_ = std::string("bert-") + (pooling_ == Pooling::kCls ? "cls" : "mean") + ":" + std::to_string(m.hidden) + ":" +
        Fingerprint(m.ln_w, m.word[tokenizer_.cls_id()], query_prefix_ + "|" + std::to_string(max_length_));
}

BertEncoder::~BertEncoder() = default;

size_t BertEncoder::dim() const { return static_cast<size_t>(model_->hidden); }

void BertEncoder::Forward(const std::vector<std::vector<int64_t>>& batch, float* out) const {
  const Model& m = *model_;
  const int64_t b = static_cast<int64_t>(batch.size());
  int64_t t = 0;
  for (const auto& ids : batch) t = std::max<int64_t>(t, static_cast<int64_t>(ids.size()));
  at::Tensor ids = at::full({b, t}, tokenizer_.pad_id(), at::kLong);
  at::Tensor mask = at::zeros({b, t}, at::kFloat);
  auto ids_a = ids.accessor<int64_t, 2>();
  auto mask_a = mask.accessor<float, 2>();
  for (int64_t i = 0; i < b; ++i) {
    for (size_t j = 0; j < batch[i].size(); ++j) ids_a[i][j] = batch[i][j], mask_a[i][j] = 1.0f;
  }
  const int64_t h = m.hidden, heads = m.heads, head_dim = h / heads;
  at::Tensor x = at::embedding(m.word, ids) + m.position.slice(0, 0, t).unsqueeze(0) + m.token_type[0];
  x = at::layer_norm(x, {h}, m.ln_w, m.ln_b, m.eps);
  // Padding keys get the most negative float, as transformers does.
  const at::Tensor bias = (1.0f - mask).view({b, 1, 1, t}) * std::numeric_limits<float>::lowest();
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  for (const Model::Layer& layer : m.layers) {
    const at::Tensor qkv =
        at::linear(x, layer.qkv_w, layer.qkv_b).view({b, t, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
    const at::Tensor scores = at::matmul(qkv[0], qkv[1].transpose(-1, -2)) * scale + bias;
    const at::Tensor context = at::matmul(at::softmax(scores, -1), qkv[2]).permute({0, 2, 1, 3}).reshape({b, t, h});
    x = at::layer_norm(at::linear(context, layer.out_w, layer.out_b) + x, {h}, layer.ln1_w, layer.ln1_b, m.eps);
    const at::Tensor up = m.Activate(at::linear(x, layer.up_w, layer.up_b));
    x = at::layer_norm(at::linear(up, layer.down_w, layer.down_b) + x, {h}, layer.ln2_w, layer.ln2_b, m.eps);
  }
  at::Tensor pooled;
  if (pooling_ == Pooling::kCls) {
    pooled = x.select(1, 0);
  } else {
    pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, true).clamp_min(1e-9);
  }
  pooled = (pooled / pooled.norm(2, {-1}, true).clamp_min(1e-12)).contiguous();
  std::copy_n(pooled.data_ptr<float>(), b * h, out);
}

void BertEncoder::EmbedDocuments(const std::vector<std::string>& texts, float* out) const {
  c10::InferenceMode inference;
  std::vector<std::vector<int64_t>> encoded;
  encoded.reserve(texts.size());
  for (const std::string& text : texts) encoded.push_back(tokenizer_.Encode(text, max_length_));
  // Similar lengths together: less padding.
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return encoded[a].size() < encoded[b].size(); });
  const size_t d = dim();
  const size_t batch = preferred_batch();
  std::vector<float> rows;
  for (size_t begin = 0; begin < order.size(); begin += batch) {
    const size_t end = std::min(order.size(), begin + batch);
    std::vector<std::vector<int64_t>> group;
    for (size_t i = begin; i < end; ++i) group.push_back(std::move(encoded[order[i]]));
    rows.resize(group.size() * d);
    Forward(group, rows.data());
    for (size_t i = begin; i < end; ++i) std::copy_n(rows.data() + (i - begin) * d, d, out + order[i] * d);
  }
}

void BertEncoder::EmbedQuery(std::string_view query, float* out) const {
  EmbedDocuments({query_prefix_ + std::string(query)}, out);
}

}  // namespace thalamus::retrieval
