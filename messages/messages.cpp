#include "messages/messages.h"

#include <flatbuffers/flatbuffers.h>

namespace thalamus::messages {

std::string Encode(const wire::EnvelopeT& envelope) {
  // One builder per thread, cleared and reused: a fresh one allocates its
  // buffer and grows it by copying for every message, which showed up on the
  // router's event loop. One that grew past 1 MiB (a large RAG answer) is
  // replaced rather than kept at that size.
  constexpr size_t kInitialBytes = 1024, kKeepBytes = 1 << 20;
  thread_local flatbuffers::FlatBufferBuilder builder(kInitialBytes);
  builder.Clear();
  builder.Finish(wire::Envelope::Pack(builder, &envelope));
  std::string bytes(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
  if (bytes.size() > kKeepBytes) builder = flatbuffers::FlatBufferBuilder(kInitialBytes);
  return bytes;
}

namespace {

std::string CheckReady(const wire::ReadyT& ready) {
  if (ready.service.empty()) return "Ready without a service";
  for (const std::string* name : {&ready.service, &ready.hostname, &ready.model, &ready.kind}) {
    if (name->size() > kMaxNameBytes) return "Ready with a name over " + std::to_string(kMaxNameBytes) + " bytes";
  }
  return "";
}

std::string CheckQuery(const wire::QueryT& query) {
  // Its Partials carry the id, and a Partial's request_id is never 0.
  if (query.stream && query.client_request_id == 0) return "streamed Query without its client_request_id";
  if (query.experts.size() > kMaxQueryExperts) {
    return "Query naming " + std::to_string(query.experts.size()) + " services (at most " +
           std::to_string(kMaxQueryExperts) + ")";
  }
  for (const std::string& name : query.experts) {
    if (name.empty()) return "Query naming an empty service";
  }
  return "";
}

// The request id the body must carry, or null for kinds without one.
const uint64_t* RequestIdOf(const wire::EnvelopeT& envelope) {
  if (const auto* request = envelope.body.AsExpertRequest()) return &request->request_id;
  if (const auto* reply = envelope.body.AsExpertReply()) return &reply->request_id;
  if (const auto* partial = envelope.body.AsPartial()) return &partial->request_id;
  if (const auto* cancel = envelope.body.AsCancel()) return &cancel->request_id;
  return nullptr;
}

}  // namespace

std::string CheckBody(const wire::EnvelopeT& envelope) {
  const wire::Body type = envelope.body.type;
  if (type == wire::Body::NONE) return "envelope without a body";
  if (envelope.body.value == nullptr) return std::string(wire::EnumNameBody(type)) + " envelope without its body";
  if (const uint64_t* id = RequestIdOf(envelope); id && *id == 0) {
    return std::string(wire::EnumNameBody(type)) + " without its request_id";
  }
  if (const auto* ready = envelope.body.AsReady()) return CheckReady(*ready);
  if (const auto* query = envelope.body.AsQuery()) return CheckQuery(*query);
  return "";
}

std::optional<wire::EnvelopeT> Decode(const void* data, size_t size, std::string* error) {
  const auto refuse = [error](std::string why) -> std::optional<wire::EnvelopeT> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (data == nullptr || size == 0) return refuse("empty frame");
  // FlatBuffers reads scalars in place, so the buffer must be aligned; ZeroMQ
  // frames usually are, but a copy keeps the verifier honest when they aren't.
  std::string aligned;
  auto bytes = static_cast<const uint8_t*>(data);
  if (reinterpret_cast<uintptr_t>(bytes) % alignof(std::max_align_t) != 0) {
    aligned.assign(static_cast<const char*>(data), size);
    bytes = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  flatbuffers::Verifier verifier(bytes, size, /*max_depth=*/64, /*max_tables=*/1'000'000);
  if (!wire::VerifyEnvelopeBuffer(verifier)) return refuse("not a valid FlatBuffers Envelope");
  wire::EnvelopeT out;
  wire::GetEnvelope(bytes)->UnPackTo(&out);
  if (std::string why = CheckBody(out); !why.empty()) return refuse(std::move(why));
  return out;
}

wire::ExpertReplyT ErrorReply(wire::StatusCode code, std::string error) {
  wire::ExpertReplyT reply;
  reply.status = code;
  reply.error = std::move(error);
  reply.finish_reason = "error";
  return reply;
}

wire::QueryResultT ErrorResult(wire::StatusCode code, std::string error, uint64_t client_request_id,
                               uint32_t retry_after_ms) {
  wire::QueryResultT result;
  result.client_request_id = client_request_id;
  result.status = code;
  result.error = std::move(error);
  result.retry_after_ms = retry_after_ms;
  return result;
}

int HttpStatus(wire::StatusCode code) {
  switch (code) {
    case wire::StatusCode::OK: return 200;
    case wire::StatusCode::BAD_REQUEST: return 400;
    case wire::StatusCode::NOT_FOUND: return 404;
    case wire::StatusCode::OVERLOADED: return 429;
    case wire::StatusCode::UNAVAILABLE: return 503;
    case wire::StatusCode::DEADLINE_EXCEEDED: return 504;
    case wire::StatusCode::EXPERT_FAILED: return 502;
    case wire::StatusCode::INTERNAL: return 500;
    case wire::StatusCode::CANCELLED: return 499;
    case wire::StatusCode::CONTEXT_TOO_LONG: return 400;
  }
  return 500;
}

const char* StatusName(wire::StatusCode code) {
  switch (code) {
    case wire::StatusCode::OK: return "ok";
    case wire::StatusCode::BAD_REQUEST: return "bad_request";
    case wire::StatusCode::NOT_FOUND: return "not_found";
    case wire::StatusCode::OVERLOADED: return "overloaded";
    case wire::StatusCode::UNAVAILABLE: return "unavailable";
    case wire::StatusCode::DEADLINE_EXCEEDED: return "deadline_exceeded";
    case wire::StatusCode::EXPERT_FAILED: return "expert_failed";
    case wire::StatusCode::INTERNAL: return "internal";
    case wire::StatusCode::CANCELLED: return "cancelled";
    case wire::StatusCode::CONTEXT_TOO_LONG: return "context_too_long";
  }
  return "internal";
}

}  // namespace thalamus::messages
