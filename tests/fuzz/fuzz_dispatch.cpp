// Fuzz target: decode and dispatch on each side that receives frames, as
// wired in the service, with the frame arriving over a real ZeroMQ socket:
//   first byte % 3 == 0: the router's ZeroMQ front end (frontends/zmq_frontend,
//                        over the tests' scripted QueryService), from a client;
//                   == 1: the broker's backend (router/broker), from a peer
//                        that is not one of its workers;
//                   == 2: an expert's worker runtime (experts/worker, echo),
//                        from whatever it connected to.
// The rest of the input is the frame. After each frame a well-formed probe
// must still be served by the side that took the frame: a query through the
// front end, a request through the broker to its real (echo) worker, a
// request to the fuzzed worker. A crash, a sanitizer report, a probe not
// answered in 8 s, or a wrong answer fails the run.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "experts/echo_expert.h"
#include "experts/worker.h"
#include "frontends/zmq_frontend.h"
#include "router/broker.h"
#include "router/event_loop.h"
#include "router/metrics.h"
#include "tests/frontends/scripted_query_service.h"

namespace {

using namespace thalamus;
using Clock = std::chrono::steady_clock;
constexpr auto kProbeTimeout = std::chrono::seconds(8);  // below libFuzzer's -timeout=10

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_dispatch: %s\n", what);
  std::abort();
}

// A receive that waits the socket's ZMQ_RCVTIMEO; false when nothing came.
// libFuzzer's -max_total_time alarm interrupts it: that is not a finding.
bool Receive(zmq::socket_t& socket, zmq::message_t& frame) {
  for (;;) {
    try {
      return socket.recv(frame).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
  }
}

std::unique_ptr<experts::Worker> EchoWorker(const std::string& backend, int heartbeat_ms) {
  config::ExpertConfig echo;
  echo.name = "echo";
  echo.kind = config::ExpertKind::kEcho;
  experts::WorkerOptions options;
  options.backend = backend;
  options.service = "echo";
  options.kind = "echo";
  options.heartbeat_ms = heartbeat_ms;
  return std::make_unique<experts::Worker>(options, experts::MakeEchoExpert(echo));
}

// The scripted service answers on its own thread; the router's QueryService
// calls back on the loop thread, which is what the front end relies on.
class OnLoop : public router::QueryService {
 public:
  OnLoop(router::EventLoop& loop, router::QueryService& service) : loop_(loop), service_(service) {}
  void Submit(wire::QueryT query, router::QueryCallbacks callbacks) override {
    auto shared = std::make_shared<router::QueryCallbacks>(std::move(callbacks));
    router::QueryCallbacks posted;
    posted.on_partial = [this, shared](std::string_view text) {
      loop_.Post([shared, text = std::string(text)] { shared->on_partial(text); });
    };
    posted.on_result = [this, shared](wire::QueryResultT result) {
      loop_.Post([shared, result = std::move(result)]() mutable { shared->on_result(std::move(result)); });
    };
    service_.Submit(std::move(query), std::move(posted));
  }
  void SubmitInLoop(wire::QueryT query, router::QueryCallbacks callbacks) override {
    Submit(std::move(query), std::move(callbacks));
  }
  std::vector<router::ServiceInfo> Services() const override { return service_.Services(); }
  bool Ready() const override { return service_.Ready(); }

 private:
  router::EventLoop& loop_;
  router::QueryService& service_;
};

class Harness {
 public:
  Harness()
      : client_(loop_.context(), zmq::socket_type::dealer),
        stranger_(loop_.context(), zmq::socket_type::dealer),
        fake_broker_(context_, zmq::socket_type::router) {
    config::Config& config = config_;
    config.broker.backend = "tcp://127.0.0.1:*";
    config.broker.frontend = "";
    config.broker.max_workers_per_service = 1;  // the real worker's: a stranger's READY is refused
    config::ExpertConfig echo;
    echo.name = "echo";
    echo.kind = config::ExpertKind::kEcho;
    config.experts.push_back(echo);
    broker_ = std::make_unique<router::Broker>(config, loop_, metrics_);
    frontends::ZmqFrontendOptions options;
    options.endpoint = "inproc://fuzz-frontend";
    frontend_ = std::make_unique<frontends::ZmqFrontend>(options, loop_, on_loop_, metrics_);
    loop_.Start();

    for (zmq::socket_t* socket : {&client_, &stranger_, &fake_broker_}) {
      socket->set(zmq::sockopt::linger, 0);
      socket->set(zmq::sockopt::rcvtimeo, 100);
    }
    client_.connect("inproc://fuzz-frontend");
    stranger_.connect(broker_->endpoint());
    fake_broker_.bind("tcp://127.0.0.1:*");

    served_ = EchoWorker(broker_->endpoint(), config.broker.heartbeat_ms);
    served_thread_ = std::thread([this] { served_->Run(stop_); });
    // A worker told DISCONNECT waits a heartbeat before it reconnects: keep that short.
    fuzzed_ = EchoWorker(fake_broker_.get(zmq::sockopt::last_endpoint), 20);
    fuzzed_thread_ = std::thread([this] { fuzzed_->Run(stop_); });
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    while (!broker_->HasLiveWorker("echo")) {
      if (Clock::now() > give_up) Fail("the echo worker never joined the broker");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  void FrontEnd(const uint8_t* data, size_t size) {
    client_.send(zmq::const_buffer(data, size), zmq::send_flags::none);
    const uint64_t id = ++probes_;
    wire::QueryT query;
    query.client_request_id = id;
    query.prompt = "probe";
    client_.send(zmq::buffer(messages::EncodeBody(std::move(query))), zmq::send_flags::none);
    for (const auto give_up = Clock::now() + kProbeTimeout; Clock::now() < give_up;) {
      zmq::message_t frame;
      if (!Receive(client_, frame)) continue;
      std::string why;
      const auto envelope = messages::Decode(frame.data(), frame.size(), &why);
      if (!envelope) Fail(("the front end sent an invalid frame: " + why).c_str());
      const auto* result = envelope->body.AsQueryResult();
      if (result == nullptr || result->client_request_id != id) continue;
      if (result->status != wire::StatusCode::OK) Fail("the front end failed a well-formed query");
      return;
    }
    Fail("the front end did not answer a well-formed query");
  }

  void Backend(const uint8_t* data, size_t size) {
    stranger_.send(zmq::const_buffer(data, size), zmq::send_flags::none);
    auto answered = std::make_shared<std::promise<wire::ExpertReplyT>>();
    std::future<wire::ExpertReplyT> reply = answered->get_future();
    loop_.Post([this, answered] {
      wire::ExpertRequestT request;
      request.prompt = "probe";
      router::DispatchCallbacks callbacks;
      callbacks.on_reply = [answered](wire::ExpertReplyT reply, const router::DispatchOutcome&) {
        answered->set_value(std::move(reply));
      };
      broker_->Dispatch("echo", std::move(request), Clock::now() + kProbeTimeout, std::move(callbacks));
    });
    if (reply.wait_for(kProbeTimeout + std::chrono::seconds(1)) != std::future_status::ready) {
      Fail("the broker did not answer a request for its live worker");
    }
    const wire::ExpertReplyT got = reply.get();
    if (got.status != wire::StatusCode::OK || got.text != "probe") Fail("the broker's worker answered wrongly");
  }

  void Worker(const uint8_t* data, size_t size) {
    SendToWorker(zmq::const_buffer(data, size));
    const uint64_t id = (uint64_t{1} << 63) | ++probes_;
    SendProbe(id);
    for (const auto give_up = Clock::now() + kProbeTimeout; Clock::now() < give_up;) {
      zmq::message_t identity, frame;
      if (!Receive(fake_broker_, identity)) continue;
      (void)Receive(fake_broker_, frame);
      std::string why;
      const auto envelope = messages::Decode(frame.data(), frame.size(), &why);
      if (!envelope) Fail(("the worker sent an invalid frame: " + why).c_str());
      if (envelope->body.type == wire::Body::Ready) {  // it reconnected (told DISCONNECT): ask again
        worker_identity_ = identity.to_string();
        SendProbe(id);
        continue;
      }
      const auto* reply = envelope->body.AsExpertReply();
      if (reply == nullptr || reply->request_id != id) continue;
      if (reply->status != wire::StatusCode::OK || reply->text != "probe") Fail("the worker answered wrongly");
      return;
    }
    Fail("the worker did not answer a well-formed request");
  }

 private:
  void SendToWorker(zmq::const_buffer frame) {
    if (worker_identity_.empty()) {  // its first READY
      zmq::message_t identity, ready;
      for (const auto give_up = Clock::now() + kProbeTimeout; !Receive(fake_broker_, identity);) {
        if (Clock::now() > give_up) Fail("the worker never said READY");
      }
      (void)Receive(fake_broker_, ready);
      worker_identity_ = identity.to_string();
    }
    fake_broker_.send(zmq::buffer(worker_identity_), zmq::send_flags::sndmore);
    fake_broker_.send(frame, zmq::send_flags::none);
  }
  void SendProbe(uint64_t id) {
    wire::ExpertRequestT request;
    request.request_id = id;
    request.service = "echo";
    request.prompt = "probe";
    SendToWorker(zmq::buffer(messages::EncodeBody(std::move(request))));
  }

  config::Config config_;  // borrowed by the broker
  router::EventLoop loop_;
  router::Metrics metrics_;
  frontends::testing::ScriptedQueryService service_;
  OnLoop on_loop_{loop_, service_};
  std::unique_ptr<router::Broker> broker_;
  std::unique_ptr<frontends::ZmqFrontend> frontend_;
  zmq::context_t context_;
  zmq::socket_t client_, stranger_, fake_broker_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<experts::Worker> served_, fuzzed_;
  std::thread served_thread_, fuzzed_thread_;
  std::string worker_identity_;
  uint64_t probes_ = 0;
};

Harness* harness = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  harness = new Harness();  // lives as long as the process, with its threads
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  switch (data[0] % 3) {
    case 0: harness->FrontEnd(data + 1, size - 1); break;
    case 1: harness->Backend(data + 1, size - 1); break;
    default: harness->Worker(data + 1, size - 1); break;
  }
  return 0;
}
