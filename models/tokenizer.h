// models/tokenizer: byte-level BPE tokenizers (GPT-2, GPT-NeoX, Pythia, Mamba)
// read from a Hugging Face tokenizer.json.
//
// Encode follows Hugging Face `tokenizers` step by step, so ids are identical:
// added tokens that are not normalized are split off the raw text first
// (leftmost-longest), the rest is NFC-normalized, normalized added tokens are
// split off, the GPT-2 regex splits words, each word's bytes are merged by BPE
// rank. Decode maps ids back to bytes; invalid UTF-8 becomes U+FFFD.
// StreamDecoder turns ids into text one at a time, holding back bytes of a
// character that is not complete yet.
//
// Supported tokenizer.json: normalizer NFC or none; pre_tokenizer ByteLevel;
// model BPE without dropout, unk or subword affixes; decoder ByteLevel;
// post_processor ByteLevel or none. Anything else is an error at load time.
// A Tokenizer is immutable after loading and safe to share between threads.
// Errors: std::runtime_error naming the file (unreadable, unsupported, bad
// JSON); std::invalid_argument for text that is not valid UTF-8.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::models {

class Tokenizer {
 public:
  static Tokenizer FromFile(const std::string& path);
  // `source` names the JSON in error messages.
  static Tokenizer FromJson(std::string_view json, const std::string& source);

  std::vector<int32_t> Encode(std::string_view text) const;
  // Ids the tokenizer does not know are skipped, as Hugging Face does.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The raw bytes a token stands for (not necessarily valid UTF-8 alone);
  // empty for ids the tokenizer does not know.
  const std::string& TokenBytes(int32_t id) const;
  // The id of a token given by its vocabulary string, e.g. "<|endoftext|>".
  std::optional<int32_t> TokenId(std::string_view token) const;
  bool IsSpecial(int32_t id) const;
  // One more than the largest id.
  int32_t VocabSize() const;

  struct Data;  // the loaded tables; defined in tokenizer.cpp

 private:
  explicit Tokenizer(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

// Incremental decoding for streaming: Push returns the text that became
// complete with this id (often empty mid-character), Finish the rest.
class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, bool skip_special_tokens = true)
      : tokenizer_(std::move(tokenizer)), skip_special_tokens_(skip_special_tokens) {}
  std::string Push(int32_t id);
  std::string Finish();

 private:
  Tokenizer tokenizer_;  // a cheap handle to shared tables
  bool skip_special_tokens_;
  std::string pending_;
};

}  // namespace thalamus::models
