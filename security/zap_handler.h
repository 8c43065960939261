// ZapHandler: ZeroMQ's authentication hook (ZAP, RFC 27) for CURVE sockets.
// libzmq asks it about every handshake on a socket of the same context that
// is a CURVE server; it answers yes only for a client public key found in the
// authorized-keys folder of the socket's ZAP domain (ZMQ_ZAP_DOMAIN), and logs
// each refusal with the key and the peer's address. Folders are re-read when
// they change (rotation without a restart).
//
// Threading: one thread of its own, started by the constructor, stopped by
// the destructor; `on_refused` runs on it. Errors: the constructor throws
// KeyError for an unreadable folder; later read errors refuse and are logged.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "security/curve_keys.h"

namespace thalamus::security {

class ZapHandler {
 public:
  // `domains`: ZAP domain -> authorized-keys folder. Binds inproc://zeromq.zap.01
  // in `context`, which must outlive the handler; set it up before the CURVE
  // server sockets accept connections.
  ZapHandler(zmq::context_t& context, std::map<std::string, std::string> domains,
             std::function<void(const std::string& domain)> on_refused = {});
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Whether a client with this public key (Z85) may connect in `domain`.
  bool Allows(const std::string& domain, const std::string& public_key);

 private:
  struct Domain {
    std::string dir;
    std::filesystem::file_time_type read_at;
    std::set<std::string> keys;
  };
  void Serve();
  void Reload(Domain& domain);

  zmq::socket_t socket_;
  std::function<void(const std::string&)> on_refused_;
  std::mutex mutex_;
  std::map<std::string, Domain> domains_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace thalamus::security
