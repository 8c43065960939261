// messages: encode and decode the Envelopes of thalamus.fbs.
//
// Decode verifies every buffer with the FlatBuffers verifier, then checks what
// each message kind needs (CheckBody: the body of the announced type is there,
// ids and names are set, lists are bounded), and returns std::nullopt with the
// reason for anything else, so a malformed or hostile peer can never make a
// reader touch memory outside the buffer or see a null body. Decoded messages
// are owned object-API values (wire::EnvelopeT and friends). Thread-safe.
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

// The most services one query may name (the fan-out cap of both front ends).
inline constexpr size_t kMaxQueryExperts = 64;
// The most bytes of a service name, hostname, kind or model name in a READY.
inline constexpr size_t kMaxNameBytes = 256;

// Verifies, unpacks and checks the body (CheckBody). nullopt when the bytes are
// not a valid Envelope or its body is not usable; then *error (if given) says
// why, e.g. "Query envelope without its body".
std::optional<wire::EnvelopeT> Decode(const void* data, size_t size, std::string* error = nullptr);
inline std::optional<wire::EnvelopeT> Decode(std::string_view bytes, std::string* error = nullptr) {
  return Decode(bytes.data(), bytes.size(), error);
}

// "" when the unpacked envelope carries a body every handler can use, else the
// reason it cannot: no body, or a body without what its kind requires
// (Ready: a service name, every name at most kMaxNameBytes; ExpertRequest,
// ExpertReply, Partial, Cancel: a request_id; Query: at most kMaxQueryExperts
// named services, none empty).
std::string CheckBody(const wire::EnvelopeT& envelope);

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
