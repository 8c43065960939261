// thalamus query: one query through the router's ZeroMQ front end, as a
// client on another host would send it (with CURVE keys when the front end
// has broker.frontend_curve). Prints streamed text as it comes, then the
// answer; exits 0 on OK, 1 when the router answered an error, 3 when the
// router refused this client's key or nothing came back in time.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <zmq.h>

#include <boost/program_options.hpp>
#include <zmq.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "messages/messages.h"
#include "security/curve_keys.h"

namespace thalamus::cli {
namespace {

constexpr uint64_t kRequestId = 1;

// What the ZeroMQ monitor says went wrong with the connection, or "".
std::string ConnectionFailure(zmq::socket_t& monitor) {
  for (;;) {
    zmq::message_t event, address;
    if (!monitor.recv(event, zmq::recv_flags::dontwait)) return "";
    (void)monitor.recv(address);
    uint16_t id = 0;
    std::memcpy(&id, event.data(), sizeof(id));
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return "the router refused this client's key (CURVE)";
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) return "the security handshake failed (CURVE on one side only?)";
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) return "the security handshake failed (wrong router key?)";
  }
}

wire::QueryT BuildQuery(const boost::program_options::variables_map& vars) {
  wire::QueryT query;
  query.client_request_id = kRequestId;
  std::string text;
  for (const std::string& word : vars["text"].as<std::vector<std::string>>()) text += (text.empty() ? "" : " ") + word;
  query.prompt = text;
  if (vars.count("expert")) query.experts = vars["expert"].as<std::vector<std::string>>();
  query.stream = vars.count("stream") > 0;
  query.with_trace = false;
  query.params = std::make_unique<wire::GenerationParamsT>();
  query.params->max_tokens = vars["max-tokens"].as<int>();
  return query;
}

}  // namespace

int RunQuery(int argc, char** argv) {
  namespace po = boost::program_options;
  po::options_description options("thalamus query: send TEXT through a router's ZeroMQ front end and print the answer");
  options.add_options()("help,h", "show this help")(
      "frontend", po::value<std::string>()->default_value("tcp://127.0.0.1:5555"), "the router's broker.frontend")(
      "expert", po::value<std::vector<std::string>>(), "ask this service (repeatable); default: the gate chooses")(
      "stream", "print the answer as it is generated")("max-tokens", po::value<int>()->default_value(128),
                                                       "at most this many tokens in the answer")(
      "timeout-ms", po::value<int>()->default_value(30000), "give up after this long without the answer")(
      "curve-key", po::value<std::string>(), "this client's key pair (thalamus keys generate), for a CURVE front end")(
      "server-key", po::value<std::string>(), "the router's public key file (.pub), with --curve-key")(
      "text", po::value<std::vector<std::string>>()->required(), "the question");
  po::positional_options_description positional;
  positional.add("text", -1);
  po::variables_map vars;
  const auto check = [&] {
    if (vars.count("curve-key") != vars.count("server-key")) {
      throw std::invalid_argument("--curve-key and --server-key go together");
    }
    if (vars["max-tokens"].as<int>() < 1 || vars["timeout-ms"].as<int>() < 1) {
      throw std::invalid_argument("--max-tokens and --timeout-ms are positive");
    }
  };
  if (auto code = ParseOptions(argc, argv, "thalamus query", options, vars, check, &positional)) return *code;

  zmq::context_t context;
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  try {
    if (vars.count("curve-key")) {
      security::MakeCurveClient(socket, security::ReadKeyPair(vars["curve-key"].as<std::string>()),
                                security::ReadPublicKey(vars["server-key"].as<std::string>()));
    }
  } catch (const security::KeyError& e) {
    std::cerr << "thalamus query: " << e.what() << "\n";
    return 2;
  }
  zmq_socket_monitor(
      socket.handle(), "inproc://query-monitor",
      ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
  zmq::socket_t monitor(context, zmq::socket_type::pair);
  monitor.connect("inproc://query-monitor");
  socket.connect(vars["frontend"].as<std::string>());
  socket.send(zmq::buffer(messages::EncodeBody(BuildQuery(vars))), zmq::send_flags::none);

  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(vars["timeout-ms"].as<int>());
  while (std::chrono::steady_clock::now() < give_up) {
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, {monitor.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(100));
    if (const std::string failure = ConnectionFailure(monitor); !failure.empty()) {
      std::cerr << "thalamus query: " << failure << "\n";
      return 3;
    }
    zmq::message_t frame;
    while (socket.recv(frame, zmq::recv_flags::dontwait)) {
      std::string why;
      const auto envelope = messages::Decode(frame.data(), frame.size(), &why);
      if (!envelope) {
        std::cerr << "thalamus query: the router sent an invalid frame: " << why << "\n";
        return 1;
      }
      if (const auto* partial = envelope->body.AsPartial()) {
        std::cout << partial->text << std::flush;
      } else if (const auto* result = envelope->body.AsQueryResult();
                 result && result->client_request_id == kRequestId) {
        if (result->status != wire::StatusCode::OK) {
          std::cerr << "thalamus query: " << messages::StatusName(result->status) << ": " << result->error << "\n";
          return 1;
        }
        std::cout << (vars.count("stream") ? "" : result->answer) << "\n";
        return 0;
      }
    }
  }
  std::cerr << "thalamus query: no answer from " << vars["frontend"].as<std::string>() << " within "
            << vars["timeout-ms"].as<int>() << " ms\n";
  return 3;
}

}  // namespace thalamus::cli
