// retrieval/embedder: turns text into unit-length vectors whose inner product
// measures similarity.
//
// Two kinds behind one interface:
//  - HashingEmbedder (spec "hashing" or "hashing:DIM"): no weights. Word
//    unigrams and bigrams, sub-words of identifiers (camelCase, snake_case)
//    and character n-grams, each hashed with a sign into DIM buckets,
//    sublinear term frequency, L2-normalized. Deterministic across runs and
//    machines (a fixed 64-bit hash, not std::hash).
//  - BertEncoder (spec "bert:DIR" or just DIR): a BERT-family encoder from a
//    sentence-transformers checkpoint directory, in LibTorch (bert_encoder.h).
//
// Embedders are immutable after construction and thread-safe. Errors:
// MakeEmbedder throws std::runtime_error for a bad spec or unreadable model.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::retrieval {

class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual size_t dim() const = 0;
  // Names the embedding space, e.g. "hashing-v1:384". Vectors from embedders
  // with different ids are not comparable; an index records the id it was
  // built with and refuses another.
  virtual std::string id() const = 0;
  // Writes texts.size() rows of dim() floats, each L2-normalized (all-zero for
  // a text with nothing to embed), to `out`.
  virtual void EmbedDocuments(const std::vector<std::string>& texts, float* out) const = 0;
  // Embeds a search query; BGE models prepend their query instruction.
  virtual void EmbedQuery(std::string_view query, float* out) const;
  // How many documents one EmbedDocuments call should get for best speed.
  virtual size_t preferred_batch() const { return 64; }
};

class HashingEmbedder : public Embedder {
 public:
  static constexpr size_t kDefaultDim = 384;
  explicit HashingEmbedder(size_t dim = kDefaultDim);  // throws std::invalid_argument for dim < 16

  size_t dim() const override { return dim_; }
  std::string id() const override;
  void EmbedDocuments(const std::vector<std::string>& texts, float* out) const override;
  size_t preferred_batch() const override { return 256; }

  // One text, `out` has dim() floats.
  void Embed(std::string_view text, float* out) const;

 private:
  size_t dim_;
};

// Builds the embedder `spec` names: "hashing", "hashing:DIM", "bert:DIR" or a
// checkpoint directory DIR. A relative DIR is resolved against base_dir.
// `threads` bounds the encoder's intra-op threads (0: LibTorch's default).
std::unique_ptr<Embedder> MakeEmbedder(const std::string& spec, const std::string& base_dir = "", int threads = 0);

}  // namespace thalamus::retrieval
