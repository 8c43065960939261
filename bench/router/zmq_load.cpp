// Closed-loop ZeroMQ clients: one DEALER socket per client, all polled by one thread.
#include <optional>

#include <zmq.hpp>

#include "bench/router/load.h"
#include "messages/messages.h"

namespace thalamus::bench {
namespace {

struct Client {
  explicit Client(zmq::socket_t s) : socket(std::move(s)) {}
  zmq::socket_t socket;
  uint64_t sequence = 0;
  std::string prompt;
  Clock::time_point sent;
  bool waiting = false;
};

void Send(Client& client, ZmqProtocol protocol, bool with_trace) {
  if (protocol == ZmqProtocol::kRawEcho) {
    // The empty delimiter makes the message look like a REQ's to the REP workers.
    (void)client.socket.send(zmq::message_t(), zmq::send_flags::sndmore);
    (void)client.socket.send(zmq::buffer(client.prompt), zmq::send_flags::none);
    return;
  }
  wire::QueryT query;
  query.client_request_id = client.sequence;
  query.prompt = client.prompt;
  query.with_trace = with_trace;
  (void)client.socket.send(zmq::buffer(messages::EncodeBody(std::move(query))), zmq::send_flags::none);
}

// Checks one whole answer; returns the error, or nullopt when it is the echo of the prompt.
std::optional<std::string> Check(const std::vector<zmq::message_t>& frames, const Client& client, ZmqProtocol protocol) {
  if (protocol == ZmqProtocol::kRawEcho) {
    if (frames.size() != 2 || frames[0].size() != 0) return "expected [empty][payload] from the proxy";
    if (frames[1].to_string_view() != client.prompt) return "the proxy echoed a different payload";
    return std::nullopt;
  }
  if (frames.size() != 1) return "expected one frame from the router, got " + std::to_string(frames.size());
  auto envelope = messages::Decode(frames[0].data(), frames[0].size());
  if (!envelope || envelope->body.type != wire::Body::QueryResult) return "not an Envelope holding a QueryResult";
  const wire::QueryResultT& result = *envelope->body.AsQueryResult();
  if (result.status != wire::StatusCode::OK) return std::string("router answered ") + messages::StatusName(result.status) + ": " + result.error;
  if (result.client_request_id != client.sequence) return "answer for another request id";
  if (result.answer != client.prompt) return "the answer is not the echoed prompt";
  return std::nullopt;
}

// Receives every whole message waiting on the client's socket.
void Receive(Client& client, ZmqProtocol protocol, Recorder& recorder, int& outstanding) {
  for (;;) {
    std::vector<zmq::message_t> frames(1);
    if (!client.socket.recv(frames[0], zmq::recv_flags::dontwait)) return;
    const auto answered = Clock::now();
    while (frames.back().more()) {
      frames.emplace_back();
      (void)client.socket.recv(frames.back(), zmq::recv_flags::none);
    }
    if (!client.waiting) {
      recorder.Failure("an answer nobody asked for");
      continue;
    }
    client.waiting = false;
    --outstanding;
    if (auto error = Check(frames, client, protocol)) {
      recorder.Failure(*error);
    } else {
      recorder.Success(client.sent, answered);
    }
  }
}

}  // namespace

LoadResult RunZmqLoad(const std::string& endpoint, ZmqProtocol protocol, bool with_trace, const LoadOptions& options) {
  zmq::context_t context(1);
  std::vector<Client> clients;
  clients.reserve(static_cast<size_t>(options.concurrency));
  std::vector<zmq::pollitem_t> items;
  for (int i = 0; i < options.concurrency; ++i) {
    clients.emplace_back(zmq::socket_t(context, zmq::socket_type::dealer));
    clients.back().socket.set(zmq::sockopt::linger, 0);
    clients.back().socket.connect(endpoint);
    items.push_back({clients.back().socket.handle(), 0, ZMQ_POLLIN, 0});
  }
  Recorder recorder(options);
  int outstanding = 0;
  auto send_next = [&](int index) {
    Client& client = clients[static_cast<size_t>(index)];
    client.sequence++;
    client.prompt = Prompt(index, client.sequence, options.payload_bytes);
    client.sent = Clock::now();
    client.waiting = true;
    ++outstanding;
    Send(client, protocol, with_trace);
  };
  for (int i = 0; i < options.concurrency; ++i) send_next(i);
  while (outstanding > 0 && Clock::now() < recorder.drain_deadline()) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (size_t i = 0; i < items.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Receive(clients[i], protocol, recorder, outstanding);
      if (!clients[i].waiting && recorder.Sending(Clock::now())) send_next(static_cast<int>(i));
    }
  }
  return recorder.Finish(static_cast<uint64_t>(outstanding));
}

}  // namespace thalamus::bench
