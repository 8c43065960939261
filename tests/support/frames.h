// Hostile frames for the tests of every side that decodes Envelopes.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <string>

#include "messages/messages.h"

namespace thalamus::testing {

// An Envelope whose body_type says `type` but which carries no body. It
// passes the FlatBuffers verifier (the body is optional in the schema); the
// 20-byte Query one crashed the router before messages::CheckBody.
inline std::string BodylessEnvelope(wire::Body type) {
  flatbuffers::FlatBufferBuilder builder;
  wire::EnvelopeBuilder envelope(builder);
  envelope.add_body_type(type);
  builder.Finish(envelope.Finish());
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

}  // namespace thalamus::testing
