// WordPiece (Schuster & Nakajima 2012; Devlin et al. 2018) written here
// because no Debian-packaged C++ library provides BERT's tokenizer.
#include "retrieval/wordpiece.h"

#include <fstream>
#include <stdexcept>

#include "retrieval/text.h"

namespace thalamus::retrieval {

WordPieceTokenizer WordPieceTokenizer::FromVocabFile(const std::string& path, Options options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open WordPiece vocabulary " + path);
  std::vector<std::string> vocabulary;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocabulary.push_back(line);
  }
  return WordPieceTokenizer(std::move(vocabulary), options, path);
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocabulary, Options options, std::string origin)
    : vocabulary_(std::move(vocabulary)), options_(options) {
  if (vocabulary_.empty()) throw std::runtime_error(origin + ": empty WordPiece vocabulary");
  ids_.reserve(vocabulary_.size());
  // A token listed twice maps to its last line, as in Hugging Face's loaders.
  for (size_t id = 0; id < vocabulary_.size(); ++id) ids_[vocabulary_[id]] = static_cast<int64_t>(id);
  auto special = [&](const char* token) {
    const int64_t id = Lookup(token);
    if (id < 0) throw std::runtime_error(origin + ": WordPiece vocabulary has no " + token + " token");
    return id;
  };
  cls_ = special("[CLS]");
  sep_ = special("[SEP]");
  pad_ = special("[PAD]");
  unk_ = special("[UNK]");
}

int64_t WordPieceTokenizer::Lookup(const std::string& token) const {
  const auto found = ids_.find(token);
  return found == ids_.end() ? -1 : found->second;
}

void WordPieceTokenizer::AppendWord(const std::string& word, std::vector<int64_t>& ids) const {
  const std::vector<size_t> offsets = CodePointOffsets(word);
  const size_t chars = offsets.size() - 1;
  if (chars > options_.max_chars_per_word) {
    ids.push_back(unk_);
    return;
  }
  std::vector<int64_t> pieces;
  std::string candidate;
  for (size_t begin = 0; begin < chars;) {
    int64_t match = -1;
    size_t end = chars;
    for (; end > begin; --end) {
      candidate = begin > 0 ? "##" : "";
      candidate.append(word, offsets[begin], offsets[end] - offsets[begin]);
      match = Lookup(candidate);
      if (match >= 0) break;
    }
    if (match < 0) {
      ids.push_back(unk_);  // one uncoverable piece makes the whole word unknown
      return;
    }
    pieces.push_back(match);
    begin = end;
  }
  ids.insert(ids.end(), pieces.begin(), pieces.end());
}

std::vector<int64_t> WordPieceTokenizer::Tokenize(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& word : BasicTokenize(text, options_.lowercase, options_.strip_accents)) AppendWord(word, ids);
  return ids;
}

std::vector<int64_t> WordPieceTokenizer::Encode(std::string_view text, size_t max_length) const {
  if (max_length < 2) throw std::invalid_argument("WordPiece Encode: max_length must be at least 2");
  std::vector<int64_t> pieces = Tokenize(text);
  if (pieces.size() > max_length - 2) pieces.resize(max_length - 2);
  std::vector<int64_t> ids;
  ids.reserve(pieces.size() + 2);
  ids.push_back(cls_);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  ids.push_back(sep_);
  return ids;
}

}  // namespace thalamus::retrieval
