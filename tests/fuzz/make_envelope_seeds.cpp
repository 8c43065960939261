// Writes the seed corpus of fuzz_envelope: one well-formed envelope of every
// kind the router and the experts exchange, into the folder given as argv[1]
// (tests/fuzz/corpus/fuzz_envelope). Run again after a schema change.
#include <fstream>
#include <iostream>
#include <string>

#include "messages/messages.h"

namespace wire = thalamus::wire;
using thalamus::messages::EncodeBody;

namespace {

std::unique_ptr<wire::PassageT> Passage() {
  auto passage = std::make_unique<wire::PassageT>();
  passage->text = "Experts connect to the router.";
  passage->source = "README.md";
  passage->score = 0.5f;
  return passage;
}

void Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_envelope_seeds DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  wire::QueryT query;
  query.client_request_id = 3;
  query.messages.push_back(std::make_unique<wire::ChatMessageT>());
  query.messages.back()->role = "user";
  query.messages.back()->content = "hello";
  query.params = std::make_unique<wire::GenerationParamsT>();
  query.params->stop = {"\n"};
  query.experts = {"echo", "docs"};
  query.stream = true;
  Write(dir, "query", EncodeBody(std::move(query)));
  wire::ReadyT ready;
  ready.service = "echo";
  ready.kind = "echo";
  ready.capacity = 4;
  ready.hostname = "host";
  ready.pid = 42;
  Write(dir, "ready", EncodeBody(std::move(ready)));
  wire::ExpertRequestT request;
  request.request_id = 1;
  request.service = "echo";
  request.prompt = "hello";
  request.context.push_back(Passage());
  Write(dir, "expert_request", EncodeBody(std::move(request)));
  wire::ExpertReplyT reply;
  reply.request_id = 1;
  reply.text = "hi";
  reply.passages.push_back(Passage());
  Write(dir, "expert_reply", EncodeBody(std::move(reply)));
  wire::PartialT partial;
  partial.request_id = 1;
  partial.text = "h";
  Write(dir, "partial", EncodeBody(std::move(partial)));
  wire::CancelT cancel;
  cancel.request_id = 1;
  Write(dir, "cancel", EncodeBody(std::move(cancel)));
  Write(dir, "heartbeat", EncodeBody(wire::HeartbeatT()));
  wire::DisconnectT disconnect;
  disconnect.reason = "bye";
  Write(dir, "disconnect", EncodeBody(std::move(disconnect)));
  wire::QueryResultT result;
  result.answer = "hi";
  result.trace = std::make_unique<wire::TraceT>();
  result.trace->chosen = {"echo"};
  Write(dir, "query_result", EncodeBody(std::move(result)));
  // The 20-byte Query envelope without its body that crashed the router.
  Write(dir, "bodyless_query",
        std::string("\x0c\x00\x00\x00\x08\x00\x08\x00\x00\x00\x07\x00\x08\x00\x00\x00\x00\x00\x00\x08", 20));
  return 0;
}
