// Fuzz target: messages::Decode, what the router's front end, the broker's
// backend and the expert's worker run on every frame they receive. Whatever
// the bytes, Decode must not crash, and an envelope it accepts must carry a
// body its receivers can use (CheckBody) and survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "messages/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string why;
  const auto envelope = thalamus::messages::Decode(data, size, &why);
  if (!envelope) {
    if (why.empty()) std::abort();  // every refusal says why
    return 0;
  }
  if (envelope->body.value == nullptr || !thalamus::messages::CheckBody(*envelope).empty()) std::abort();
  const std::string again = thalamus::messages::Encode(*envelope);
  if (!thalamus::messages::Decode(again).has_value()) std::abort();
  return 0;
}
