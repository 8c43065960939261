// messages: encode and decode the Envelopes of thalamus.fbs.
//
// Decode verifies every buffer with the FlatBuffers verifier before reading it
// and returns std::nullopt for anything that does not verify, so a malformed
// or hostile peer can never make a reader touch memory outside the buffer.
// Decoded messages are owned object-API values (wire::EnvelopeT and friends).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "messages/thalamus_generated.h"

namespace thalamus::messages {

// Serializes `envelope` into a self-contained byte string.
std::string Encode(const wire::EnvelopeT& envelope);

// Wraps one body (ReadyT, ExpertRequestT, ...) in an Envelope and serializes it.
template <typename BodyT>
std::string EncodeBody(BodyT body) {
  wire::EnvelopeT envelope;
  envelope.body.Set(std::move(body));
  return Encode(envelope);
}

// Verifies and unpacks. nullopt when the bytes are not a valid Envelope or the
// Envelope has no body.
std::optional<wire::EnvelopeT> Decode(const void* data, size_t size);
inline std::optional<wire::EnvelopeT> Decode(std::string_view bytes) { return Decode(bytes.data(), bytes.size()); }

// The one way to build an error answer, in every process: a status code and
// a message. An expert's reply also says finish_reason "error"; a query's
// result carries the client's request id and, for OVERLOADED and
// UNAVAILABLE, how long to wait before retrying.
wire::ExpertReplyT ErrorReply(wire::StatusCode code, std::string error);
wire::QueryResultT ErrorResult(wire::StatusCode code, std::string error, uint64_t client_request_id = 0,
                               uint32_t retry_after_ms = 0);

// The HTTP status an error code maps to (200 for OK).
int HttpStatus(wire::StatusCode code);
// Lower-case snake name of a code, e.g. "deadline_exceeded"; used in JSON errors
// and as the Prometheus status label.
const char* StatusName(wire::StatusCode code);

}  // namespace thalamus::messages
