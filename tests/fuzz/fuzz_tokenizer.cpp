// Fuzz target: the GPT-NeoX tokenizer (models/tokenizer.h) on any text, with
// the real tokenizer.json from tests/data. Encode refuses invalid UTF-8 with
// std::invalid_argument and nothing else; for valid text every id is in the
// vocabulary and Decode gives the text back as NFC (the tokenizer's
// normalizer; checked where no raw special token such as <|endoftext|> splits
// the text before normalization). Inputs starting with '{' are read as a
// tokenizer.json instead, which FromJson accepts or refuses with an exception.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include "models/text.h"
#include "models/tokenizer.h"

using thalamus::models::Tokenizer;
namespace utf8 = thalamus::models::text;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer tokenizer = Tokenizer::FromFile(THALAMUS_TOKENIZER_JSON);
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!text.empty() && text[0] == '{') {
    try {
      (void)Tokenizer::FromJson(text, "fuzz.json");
    } catch (const std::exception&) {
    }
    return 0;
  }
  if (utf8::FirstInvalidUtf8(text) != std::string::npos) {
    try {
      (void)tokenizer.Encode(text);
    } catch (const std::invalid_argument&) {
      return 0;
    }
    std::abort();  // invalid UTF-8 must be refused
  }
  const std::vector<int32_t> ids = tokenizer.Encode(text);
  for (int32_t id : ids) {
    if (id < 0 || id >= tokenizer.VocabSize()) std::abort();
  }
  if (text.find("<|") == std::string::npos && tokenizer.Decode(ids) != utf8::Nfc(text)) std::abort();
  return 0;
}
