#include "security/zap_handler.h"

#include <cstdio>
#include <vector>

namespace thalamus::security {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

std::string Z85(const std::string& binary_key) {
  if (binary_key.size() != 32) return "(not a 32-byte key)";
  char text[41] = {};
  zmq_z85_encode(text, reinterpret_cast<const uint8_t*>(binary_key.data()), binary_key.size());
  return text;
}

std::set<std::string> KeySet(const std::string& dir) {
  const std::vector<std::string> keys = ReadPublicKeys(dir);
  return {keys.begin(), keys.end()};
}

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context, std::map<std::string, std::string> domains,
                       std::function<void(const std::string& domain)> on_refused)
    : socket_(context, zmq::socket_type::rep), on_refused_(std::move(on_refused)) {
  for (auto& [name, dir] : domains) {
    Domain& domain = domains_[name];
    domain.dir = dir;
    std::error_code error;
    domain.read_at = std::filesystem::last_write_time(dir, error);  // before reading, as Reload does
    domain.keys = KeySet(dir);
  }
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(kZapEndpoint);
  thread_ = std::thread([this] { Serve(); });
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  thread_.join();
}

void ZapHandler::Reload(Domain& domain) {
  std::error_code error;
  const auto changed = std::filesystem::last_write_time(domain.dir, error);
  if (error || changed == domain.read_at) return;
  try {
    domain.keys = KeySet(domain.dir);
    domain.read_at = changed;
  } catch (const KeyError& e) {
    std::fprintf(stderr, "thalamus: keeping the authorized keys read before: %s\n", e.what());
  }
}

bool ZapHandler::Allows(const std::string& domain_name, const std::string& public_key) {
  std::lock_guard lock(mutex_);
  const auto found = domains_.find(domain_name);
  if (found == domains_.end()) return false;
  Reload(found->second);
  return found->second.keys.count(public_key) > 0;
}

// RFC 27: version, request id, domain, address, identity, mechanism, credentials
// in; version, request id, status code, status text, user id, metadata out.
void ZapHandler::Serve() {
  while (!stop_) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<std::string> frames;
    do {
      zmq::message_t frame;
      if (!socket_.recv(frame, zmq::recv_flags::none)) break;
      frames.push_back(frame.to_string());
    } while (socket_.get(zmq::sockopt::rcvmore));
    const bool well_formed = frames.size() >= 6 && frames[0] == "1.0";
    const std::string domain = well_formed ? frames[2] : "?";
    std::string key;
    bool allowed = false;
    if (well_formed && frames[5] == "CURVE" && frames.size() >= 7) {
      key = Z85(frames[6]);
      allowed = Allows(domain, key);
    }
    if (!allowed) {
      std::fprintf(stderr, "thalamus: refused a %s peer at %s on %s: key %s is not authorized\n",
                   well_formed ? frames[5].c_str() : "malformed", well_formed ? frames[3].c_str() : "?", domain.c_str(),
                   key.empty() ? "(none)" : key.c_str());
      if (on_refused_) on_refused_(domain);
    }
    const std::string reply[] = {"1.0",
                                 well_formed ? frames[1] : "",
                                 allowed ? "200" : "400",
                                 allowed ? "OK" : "not authorized",
                                 allowed ? key : "",
                                 ""};
    for (size_t i = 0; i < std::size(reply); ++i) {
      socket_.send(zmq::buffer(reply[i]), i + 1 < std::size(reply) ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

}  // namespace thalamus::security
