// retrieval/wordpiece: BERT's tokenizer. The basic tokenizer (text.h: control
// characters dropped, CJK isolated, accents stripped, lower-cased, split at
// whitespace and punctuation), then greedy longest-match-first WordPiece over
// vocab.txt: continuation pieces carry "##", and a word that cannot be covered
// (or is over 100 characters) becomes [UNK]. Matches Hugging Face's
// BertTokenizer / BertTokenizerFast with do_lower_case.
//
// Immutable after loading; thread-safe. Errors: std::runtime_error naming the
// vocabulary file (unreadable, empty, or missing a special token).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace thalamus::retrieval {

class WordPieceTokenizer {
 public:
  struct Options {
    bool lowercase = true;
    bool strip_accents = true;  // Hugging Face's default follows lowercase
    size_t max_chars_per_word = 100;
  };

  // vocab.txt: one token per line, the id is the line number from 0.
  static WordPieceTokenizer FromVocabFile(const std::string& path, Options options);
  static WordPieceTokenizer FromVocabFile(const std::string& path) { return FromVocabFile(path, Options{}); }
  WordPieceTokenizer(std::vector<std::string> vocabulary, Options options, std::string origin = "vocabulary");

  // Word-piece ids of `text`, without special tokens.
  std::vector<int64_t> Tokenize(std::string_view text) const;
  // [CLS] pieces [SEP], the pieces cut so that the whole fits max_length (>= 2).
  std::vector<int64_t> Encode(std::string_view text, size_t max_length) const;

  const std::string& Token(int64_t id) const { return vocabulary_.at(static_cast<size_t>(id)); }
  size_t vocab_size() const { return vocabulary_.size(); }
  int64_t cls_id() const { return cls_; }
  int64_t sep_id() const { return sep_; }
  int64_t pad_id() const { return pad_; }
  int64_t unk_id() const { return unk_; }

 private:
  void AppendWord(const std::string& word, std::vector<int64_t>& ids) const;
  int64_t Lookup(const std::string& token) const;  // -1 when absent

  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, int64_t> ids_;
  Options options_;
  int64_t cls_ = -1, sep_ = -1, pad_ = -1, unk_ = -1;
};

}  // namespace thalamus::retrieval
