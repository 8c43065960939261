// retrieval/bert_encoder: a BERT-family sentence encoder in LibTorch, loading
// sentence-transformers checkpoints such as all-MiniLM-L6-v2 (mean pooling)
// and bge-small-en-v1.5 (CLS pooling, query instruction).
//
// The directory holds config.json (BertModel hyper-parameters),
// model.safetensors (weights, with or without the "bert." prefix) and
// vocab.txt; when present, 1_Pooling/config.json chooses the pooling,
// sentence_bert_config.json the max_seq_length, tokenizer_config.json the
// lower-casing, and config_sentence_transformers.json's prompts.query the query
// prefix (BGE English/Chinese models get their published instruction when the
// file names none). Embeddings are always L2-normalized: the index ranks by
// inner product. Runs on CPU in fp32, texts batched by length.
//
// Thread-safe after construction. Errors: std::runtime_error naming the
// directory and the file or tensor at fault.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "retrieval/embedder.h"
#include "retrieval/wordpiece.h"

namespace thalamus::retrieval {

class BertEncoder : public Embedder {
 public:
  enum class Pooling { kMean, kCls };

  // threads > 0 sets LibTorch's intra-op thread count (process-wide).
  explicit BertEncoder(const std::string& dir, int threads = 0);
  ~BertEncoder() override;

  size_t dim() const override;
  std::string id() const override { return id_; }
  void EmbedDocuments(const std::vector<std::string>& texts, float* out) const override;
  void EmbedQuery(std::string_view query, float* out) const override;
  size_t preferred_batch() const override { return 32; }

  const WordPieceTokenizer& tokenizer() const { return tokenizer_; }
  Pooling pooling() const { return pooling_; }
  const std::string& query_prefix() const { return query_prefix_; }
  size_t max_length() const { return max_length_; }

 private:
  struct Model;
  void Forward(const std::vector<std::vector<int64_t>>& batch, float* out) const;

  std::string dir_;
  WordPieceTokenizer tokenizer_;
  std::unique_ptr<Model> model_;
  Pooling pooling_ = Pooling::kMean;
  std::string query_prefix_;
  size_t max_length_ = 512;
  std::string id_;
};

}  // namespace thalamus::retrieval
