#include "retrieval/embedder.h"

#include <filesystem>
#include <stdexcept>

#include "retrieval/bert_encoder.h"

namespace thalamus::retrieval {

void Embedder::EmbedQuery(std::string_view query, float* out) const { EmbedDocuments({std::string(query)}, out); }

std::unique_ptr<Embedder> MakeEmbedder(const std::string& spec, const std::string& base_dir, int threads) {
  if (spec.empty() || spec == "hashing") return std::make_unique<HashingEmbedder>();
  if (spec.rfind("hashing:", 0) == 0) {
    const std::string digits = spec.substr(8);
    size_t used = 0;
    unsigned long dim = 0;
    try {
      dim = std::stoul(digits, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != digits.size()) {
      throw std::runtime_error("embedder '" + spec + "': expected hashing:DIM with a positive integer DIM");
    }
    try {
      return std::make_unique<HashingEmbedder>(dim);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error("embedder '" + spec + "': " + e.what());
    }
  }
  std::filesystem::path dir = spec.rfind("bert:", 0) == 0 ? spec.substr(5) : spec;
  if (dir.empty()) throw std::runtime_error("embedder '" + spec + "': no checkpoint directory given");
  if (dir.is_relative() && !base_dir.empty()) dir = std::filesystem::path(base_dir) / dir;
  if (!std::filesystem::is_directory(dir)) {
    throw std::runtime_error("embedder '" + spec +
                             "': expected \"hashing\", \"hashing:DIM\" or a sentence-transformers " +
                             "checkpoint directory; " + dir.string() + " is not a directory");
  }
  return std::make_unique<BertEncoder>(dir.string(), threads);
}

}  // namespace thalamus::retrieval
