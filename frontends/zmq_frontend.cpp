#include "frontends/zmq_frontend.h"

#include <chrono>
#include <memory>

namespace thalamus::frontends {

ZmqFrontend::ZmqFrontend(const std::string& endpoint, int64_t max_message_bytes, const security::KeyPair* curve,
                         router::EventLoop& loop, router::QueryService& service, router::Metrics& metrics)
    : loop_(loop), service_(service), metrics_(metrics), socket_(loop.context(), zmq::socket_type::router) {
  socket_.set(zmq::sockopt::router_mandatory, 1);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::sndhwm, 100000);
  socket_.set(zmq::sockopt::rcvhwm, 100000);
  socket_.set(zmq::sockopt::maxmsgsize, max_message_bytes);
  if (curve) security::MakeCurveServer(socket_, *curve, "frontend");
  socket_.bind(endpoint);
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  loop_.AddSocket(socket_, [this] { OnReadable(); });
}

void ZmqFrontend::Reply(const std::vector<std::string>& route, const std::string& payload) {
  loop_.RecheckSocket(socket_);
  try {
    for (const std::string& frame : route) {
      if (!socket_.send(zmq::buffer(frame), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
    }
    (void)socket_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  } catch (const zmq::error_t&) {
    // The client went away (EHOSTUNREACH under ROUTER_MANDATORY): nobody is left to answer.
  }
}

void ZmqFrontend::OnReadable() {
  for (;;) {
    std::vector<zmq::message_t> frames(1);
    if (!socket_.recv(frames[0], zmq::recv_flags::dontwait)) return;
    while (socket_.get(zmq::sockopt::rcvmore)) {
      frames.emplace_back();
      (void)socket_.recv(frames.back(), zmq::recv_flags::none);
    }
    // Everything before the last frame routes the answer back: the identity,
    // and for REQ clients the empty delimiter.
    auto route = std::make_shared<std::vector<std::string>>();
    for (size_t i = 0; i + 1 < frames.size(); ++i) route->push_back(frames[i].to_string());
    const auto start = std::chrono::steady_clock::now();
    std::string why = "no message frame";
    auto envelope =
        frames.size() >= 2 ? messages::Decode(frames.back().data(), frames.back().size(), &why) : std::nullopt;
    if (envelope && envelope->body.type != wire::Body::Query) {
      why = std::string(wire::EnumNameBody(envelope->body.type)) + ", not a Query";
      envelope.reset();
    }
    if (!envelope) {
      metrics_.CountInvalidFrame("frontend");
      Reply(*route, messages::EncodeBody(messages::ErrorResult(
                        wire::StatusCode::BAD_REQUEST, "expected a FlatBuffers Envelope holding a Query: " + why)));
      metrics_.ObserveFrontend(messages::StatusName(wire::StatusCode::BAD_REQUEST), 0.0);
      continue;
    }
    wire::QueryT query = std::move(*envelope->body.AsQuery());
    const uint64_t client_id = query.client_request_id;
    router::QueryCallbacks callbacks;
    auto seq = std::make_shared<uint32_t>(0);
    callbacks.on_partial = [this, route, client_id, seq](std::string_view text) {
      wire::PartialT partial;
      partial.request_id = client_id;
      partial.seq = (*seq)++;
      partial.text = std::string(text);
      Reply(*route, messages::EncodeBody(std::move(partial)));
    };
    callbacks.on_result = [this, route, start](wire::QueryResultT result) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics_.ObserveFrontend(messages::StatusName(result.status), seconds);
      Reply(*route, messages::EncodeBody(std::move(result)));
    };
    service_.SubmitInLoop(std::move(query), std::move(callbacks));
  }
}

}  // namespace thalamus::frontends
