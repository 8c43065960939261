#include "frontends/zmq_frontend.h"

#include <chrono>
#include <memory>

namespace thalamus::frontends {

ZmqFrontend::ZmqFrontend(const ZmqFrontendOptions& options, router::EventLoop& loop, router::QueryService& service,
                         router::Metrics& metrics)
    : options_(options),
      loop_(loop),
      service_(service),
      metrics_(metrics),
      socket_(loop.context(), zmq::socket_type::router) {
  socket_.set(zmq::sockopt::router_mandatory, 1);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::sndhwm, options.send_high_water_mark);
  socket_.set(zmq::sockopt::rcvhwm, 100000);
  socket_.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
  if (options.curve) security::MakeCurveServer(socket_, *options.curve, "frontend");
  options_.curve = nullptr;  // not kept: the caller's keys need not outlive us
  socket_.bind(options.endpoint);
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  loop_.AddSocket(socket_, [this] { OnReadable(); });
}

void ZmqFrontend::Reply(const std::vector<std::string>& route, const std::string& payload) {
  loop_.RecheckSocket(socket_);
  try {
    // A client at its high-water mark gets nothing more until it reads: the
    // first frame's EAGAIN drops the whole answer (ROUTER sends are atomic).
    for (const std::string& frame : route) {
      if (!socket_.send(zmq::buffer(frame), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return metrics_.CountDroppedAnswer();
      }
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
    const std::string& client = route->front();
    if (in_flight_[client] >= options_.max_in_flight_per_client) {
      Reply(*route, messages::EncodeBody(messages::ErrorResult(wire::StatusCode::OVERLOADED,
                                                               "this client has " +
                                                                   std::to_string(options_.max_in_flight_per_client) +
                                                                   " queries in flight (broker.frontend_max_in_flight)",
                                                               client_id, options_.retry_after_ms)));
      metrics_.ObserveFrontend(messages::StatusName(wire::StatusCode::OVERLOADED), 0.0);
      continue;
    }
    ++in_flight_[client];
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
      if (auto it = in_flight_.find(route->front()); it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      metrics_.ObserveFrontend(messages::StatusName(result.status), seconds);
      Reply(*route, messages::EncodeBody(std::move(result)));
    };
    service_.SubmitInLoop(std::move(query), std::move(callbacks));
  }
}

}  // namespace thalamus::frontends
