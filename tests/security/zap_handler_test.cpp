// ZapHandler: a CURVE ROUTER server on loopback TCP with the handler on its
// context. An authorized client talks; a client with an unknown key and a
// plaintext client never get a message through; a key added to the folder
// is admitted without a restart.
#include "security/zap_handler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/support/process.h"

namespace thalamus::security {
namespace {

using namespace std::chrono_literals;

class ZapHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path() + "/clients");
    server_keys_ = GenerateKeyPair();
    WriteKeyPair(client_keys_, dir_.path() + "/clients/good");
    zap_ = std::make_unique<ZapHandler>(context_,
                                        std::map<std::string, std::string>{{"backend", dir_.path() + "/clients"}},
                                        [this](const std::string& domain) {
                                          if (domain == "backend") ++refused_;
                                        });
    server_.set(zmq::sockopt::linger, 0);
    server_.set(zmq::sockopt::rcvtimeo, 300);
    MakeCurveServer(server_, server_keys_, "backend");
    server_.bind("tcp://127.0.0.1:*");
    endpoint_ = server_.get(zmq::sockopt::last_endpoint);
  }
  void TearDown() override {
    server_.close();
    zap_.reset();
  }
  // Whether a message from a DEALER set up by `configure` reaches the server.
  bool Reaches(const std::function<void(zmq::socket_t&)>& configure) {
    zmq::socket_t client(context_, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    configure(client);
    client.connect(endpoint_);
    (void)client.send(zmq::buffer(std::string("hello")), zmq::send_flags::dontwait);
    zmq::message_t identity, payload;
    const bool got = server_.recv(identity).has_value() && server_.recv(payload).has_value();
    return got && payload.to_string() == "hello";
  }

  testing::TempDir dir_;
  zmq::context_t context_;
  KeyPair server_keys_;
  KeyPair client_keys_ = GenerateKeyPair();
  std::atomic<int> refused_{0};
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t server_{context_, zmq::socket_type::router};
  std::string endpoint_;
};

TEST_F(ZapHandlerTest, AdmitsOnlyAuthorizedKeys) {
  EXPECT_TRUE(Reaches([&](zmq::socket_t& s) { MakeCurveClient(s, client_keys_, server_keys_.public_key); }));
  const KeyPair stranger = GenerateKeyPair();
  EXPECT_FALSE(Reaches([&](zmq::socket_t& s) { MakeCurveClient(s, stranger, server_keys_.public_key); }));
  EXPECT_GE(refused_.load(), 1);
  EXPECT_FALSE(Reaches([](zmq::socket_t&) {}));  // plaintext: the handshake fails before ZAP
  // A client that trusts another server key never completes the handshake either.
  EXPECT_FALSE(Reaches([&](zmq::socket_t& s) { MakeCurveClient(s, client_keys_, GenerateKeyPair().public_key); }));
  EXPECT_TRUE(zap_->Allows("backend", client_keys_.public_key));
  EXPECT_FALSE(zap_->Allows("frontend", client_keys_.public_key));  // a domain with no folder admits no one
}

TEST_F(ZapHandlerTest, AKeyAddedToTheFolderIsAdmittedWithoutARestart) {
  const KeyPair late = GenerateKeyPair();
  EXPECT_FALSE(zap_->Allows("backend", late.public_key));
  std::this_thread::sleep_for(10ms);  // a new modification time for the folder
  WriteKeyPair(late, dir_.path() + "/clients/late");
  EXPECT_TRUE(Reaches([&](zmq::socket_t& s) { MakeCurveClient(s, late, server_keys_.public_key); }));
}

}  // namespace
}  // namespace thalamus::security
