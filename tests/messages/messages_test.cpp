#include "messages/messages.h"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/frames.h"

namespace thalamus::messages {
namespace {

TEST(Messages, RoundTripsAnExpertRequest) {
  wire::ExpertRequestT request;
  request.request_id = 42;
  request.service = "echo";
  request.prompt = "hello";
  auto message = std::make_unique<wire::ChatMessageT>();
  message->role = "user";
  message->content = "hi";
  request.messages.push_back(std::move(message));
  request.params = std::make_unique<wire::GenerationParamsT>();
  request.params->max_tokens = 7;
  request.params->stop = {"\n", "END"};
  request.stream = true;

  auto decoded = Decode(EncodeBody(std::move(request)));
  ASSERT_TRUE(decoded.has_value());
  ASSERT_EQ(decoded->body.type, wire::Body::ExpertRequest);
  const wire::ExpertRequestT& out = *decoded->body.AsExpertRequest();
  EXPECT_EQ(out.request_id, 42u);
  EXPECT_EQ(out.service, "echo");
  EXPECT_EQ(out.prompt, "hello");
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0]->content, "hi");
  EXPECT_EQ(out.params->max_tokens, 7);
  EXPECT_EQ(out.params->stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_TRUE(out.stream);
}

TEST(Messages, DefaultsSurviveTheWire) {
  wire::QueryT query;
  query.prompt = "x";
  auto decoded = Decode(EncodeBody(std::move(query)));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_TRUE(decoded->body.AsQuery()->with_trace);
  EXPECT_EQ(decoded->protocol, 1);
}

TEST(Messages, RejectsEmptyAndGarbage) {
  EXPECT_FALSE(Decode("").has_value());
  EXPECT_FALSE(Decode("not a flatbuffer at all").has_value());
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes(rng() % 200, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    // Must never crash or read out of bounds (run under ASan to be sure);
    // random bytes almost never form a valid Envelope with a body.
    (void)Decode(bytes);
  }
}

TEST(Messages, RejectsTruncatedAndCorruptedBuffers) {
  wire::ReadyT ready;
  ready.service = "mamba";
  ready.capacity = 4;
  const std::string bytes = EncodeBody(std::move(ready));
  ASSERT_TRUE(Decode(bytes).has_value());
  // A cut that removes referenced bytes must be rejected; one that only
  // drops trailing padding may pass, but then must still read the same values.
  int rejected = 0;
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    auto decoded = Decode(bytes.substr(0, cut));
    if (!decoded) {
      ++rejected;
      continue;
    }
    EXPECT_EQ(decoded->body.AsReady()->service, "mamba") << "truncated at " << cut;
    EXPECT_EQ(decoded->body.AsReady()->capacity, 4u) << "truncated at " << cut;
  }
  EXPECT_GT(rejected, static_cast<int>(bytes.size()) - 8);
  int accepted_corruptions = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string corrupted = bytes;
    corrupted[i] = static_cast<char>(corrupted[i] ^ 0xff);
    if (auto decoded = Decode(corrupted)) ++accepted_corruptions;  // a flipped string byte is still valid
  }
  EXPECT_LT(accepted_corruptions, static_cast<int>(bytes.size()));
}

TEST(Messages, DecodesUnalignedBuffers) {
  wire::HeartbeatT beat;
  beat.in_flight = 3;
  const std::string bytes = EncodeBody(std::move(beat));
  std::string shifted = "x" + bytes;
  auto decoded = Decode(shifted.data() + 1, bytes.size());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->body.AsHeartbeat()->in_flight, 3u);
}

using testing::BodylessEnvelope;

std::string Hex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return bytes;
}

std::string WhyRefused(const std::string& bytes) {
  std::string why;
  EXPECT_FALSE(Decode(bytes, &why).has_value());
  return why;
}

// The 20-byte frame that crashed the router: a Query envelope without its body.
TEST(Messages, TheTwentyByteFrameIsRefusedWithItsReason) {
  const std::string frame = Hex("0c00000008000800000007000800000000000008");
  ASSERT_EQ(frame.size(), 20u);
  EXPECT_EQ(WhyRefused(frame), "Query envelope without its body");
}

TEST(Messages, EveryBodyTypeWithoutItsBodyIsRefused) {
  for (auto type : wire::EnumValuesBody()) {
    if (type == wire::Body::NONE) continue;
    const std::string why = WhyRefused(BodylessEnvelope(type));
    EXPECT_EQ(why, std::string(wire::EnumNameBody(type)) + " envelope without its body");
  }
  EXPECT_EQ(WhyRefused(BodylessEnvelope(wire::Body::NONE)), "envelope without a body");
  EXPECT_EQ(WhyRefused(""), "empty frame");
  EXPECT_EQ(WhyRefused("junk"), "not a valid FlatBuffers Envelope");
}

TEST(Messages, RequiredFieldsOfEachKindAreChecked) {
  EXPECT_EQ(WhyRefused(EncodeBody(wire::ReadyT())), "Ready without a service");
  wire::ReadyT long_name;
  long_name.service = "svc";
  long_name.hostname = std::string(kMaxNameBytes + 1, 'h');
  EXPECT_NE(WhyRefused(EncodeBody(std::move(long_name))).find("a name over"), std::string::npos);
  EXPECT_EQ(WhyRefused(EncodeBody(wire::ExpertRequestT())), "ExpertRequest without its request_id");
  EXPECT_EQ(WhyRefused(EncodeBody(wire::ExpertReplyT())), "ExpertReply without its request_id");
  EXPECT_EQ(WhyRefused(EncodeBody(wire::PartialT())), "Partial without its request_id");
  EXPECT_EQ(WhyRefused(EncodeBody(wire::CancelT())), "Cancel without its request_id");
  wire::QueryT fan_out;
  fan_out.prompt = "x";
  fan_out.experts.assign(kMaxQueryExperts + 1, "echo");
  EXPECT_EQ(WhyRefused(EncodeBody(std::move(fan_out))), "Query naming 65 services (at most 64)");
  wire::QueryT empty_name;
  empty_name.experts = {""};
  EXPECT_EQ(WhyRefused(EncodeBody(std::move(empty_name))), "Query naming an empty service");
  // Found by tests/fuzz/fuzz_dispatch: its Partials would carry request_id 0,
  // which every receiver (a client using this library too) refuses.
  wire::QueryT anonymous_stream;
  anonymous_stream.stream = true;
  EXPECT_EQ(WhyRefused(EncodeBody(std::move(anonymous_stream))), "streamed Query without its client_request_id");

  // With what they need, each is accepted; bodies with no required field always are.
  wire::ReadyT ready;
  ready.service = "svc";
  EXPECT_TRUE(Decode(EncodeBody(std::move(ready))).has_value());
  wire::CancelT cancel;
  cancel.request_id = 1;
  EXPECT_TRUE(Decode(EncodeBody(std::move(cancel))).has_value());
  wire::QueryT query;
  query.experts.assign(kMaxQueryExperts, "echo");
  EXPECT_TRUE(Decode(EncodeBody(std::move(query))).has_value());
  EXPECT_TRUE(Decode(EncodeBody(wire::HeartbeatT())).has_value());
  EXPECT_TRUE(Decode(EncodeBody(wire::DisconnectT())).has_value());
  EXPECT_TRUE(Decode(EncodeBody(wire::QueryResultT())).has_value());
}

TEST(Messages, ErrorHelpersCarryCodeMessageAndIds) {
  const wire::ExpertReplyT reply = ErrorReply(wire::StatusCode::OVERLOADED, "full");
  EXPECT_EQ(reply.status, wire::StatusCode::OVERLOADED);
  EXPECT_EQ(reply.error, "full");
  EXPECT_EQ(reply.finish_reason, "error");
  const wire::QueryResultT result = ErrorResult(wire::StatusCode::UNAVAILABLE, "none", 7, 1500);
  EXPECT_EQ(result.status, wire::StatusCode::UNAVAILABLE);
  EXPECT_EQ(result.error, "none");
  EXPECT_EQ(result.client_request_id, 7u);
  EXPECT_EQ(result.retry_after_ms, 1500u);
}

TEST(Messages, MapsStatusCodesToHttp) {
  EXPECT_EQ(HttpStatus(wire::StatusCode::OK), 200);
  EXPECT_EQ(HttpStatus(wire::StatusCode::OVERLOADED), 429);
  EXPECT_EQ(HttpStatus(wire::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatus(wire::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatus(wire::StatusCode::NOT_FOUND), 404);
  EXPECT_STREQ(StatusName(wire::StatusCode::DEADLINE_EXCEEDED), "deadline_exceeded");
}

}  // namespace
}  // namespace thalamus::messages
