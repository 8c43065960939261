// CURVE end to end with the real processes on loopback: keys from
// `thalamus keys generate`, a router whose backend is a CURVE server, a local
// expert with an authorized key that serves, and an expert with an unknown
// key and a plaintext one that never join; the same for ZeroMQ clients of
// the front end, through `thalamus query`.
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace thalamus {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HttpRequest, testing::Process, testing::WaitFor;

void GenerateKeys(const std::string& base) {
  Process keys(testing::BinDir() + "/thalamus", {"keys", "generate", "--out", base});
  ASSERT_EQ(keys.Wait(10s), 0) << base;
}

int LiveWorkers(int port) {
  const json models = json::parse(HttpRequest(port, "GET", "/v1/models").body);
  return models["data"][0]["live_workers"].get<int>();
}

// The router on `config`, started and ready (every service has a live
// worker); throws with its log when it is not within 20 s each.
struct ReadyRouter {
  ReadyRouter(const testing::TempDir& dir, const std::string& config) : log(dir.path() + "/router.log") {
    const std::string ready = dir.path() + "/ready.json";
    process = Process(testing::BinDir() + "/thalamus-router", {"--config", config, "--ready-file", ready}, log);
    if (!WaitFor([&] { return !testing::ReadFile(ready).empty(); }, 20s)) {
      throw std::runtime_error("router did not start: " + testing::ReadFile(log));
    }
    info = json::parse(testing::ReadFile(ready));
    port = info["http_port"];
    if (!WaitFor([&] { return HttpRequest(port, "GET", "/readyz").status == 200; }, 20s)) {
      throw std::runtime_error("router not ready: " + testing::ReadFile(log));
    }
  }
  std::string log;
  Process process;
  json info;
  int port = 0;
};

TEST(CurveIntegration, OnlyExpertsWithAuthorizedKeysServe) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/experts");
  GenerateKeys(dir.path() + "/router");
  GenerateKeys(dir.path() + "/expert");
  GenerateKeys(dir.path() + "/rogue");
  std::filesystem::copy_file(dir.path() + "/expert.pub", dir.path() + "/experts/expert.pub");
  const std::string plain_broker = "broker: {frontend: \"\", backend: \"tcp://127.0.0.1:*\", heartbeat_ms: 100}\n";
  const std::string experts = "experts:\n  - {name: echo, kind: echo, replicas: 1}\n";
  const std::string config =
      dir.Write("thalamus.yaml",
                "http: {port: 0}\n"
                "broker:\n  frontend: \"\"\n  backend: \"tcp://127.0.0.1:*\"\n  heartbeat_ms: 100\n"
                "  curve: {router_key: router.key, router_public_key: router.pub, authorized_keys: experts,\n"
                "          client_key: expert.key}\n" +
                    experts);
  ReadyRouter router(dir, config);
  const int port = router.port;
  const std::string& log = router.log;
  const std::string backend = router.info["backend"];

  const json chat = {{"model", "echo"}, {"messages", json::array({{{"role", "user"}, {"content", "over curve"}}})}};
  const auto answer = HttpRequest(port, "POST", "/v1/chat/completions", chat.dump());
  ASSERT_EQ(answer.status, 200) << answer.body;
  EXPECT_NE(answer.body.find("over curve"), std::string::npos);

  // The same service, from "another host": once with a key the router does
  // not know, once in plaintext (a config without the curve section).
  Process rogue(
      testing::BinDir() + "/thalamus-expert",
      {"--config", config, "--expert", "echo", "--backend", backend, "--curve-key", dir.path() + "/rogue.key"},
      dir.path() + "/rogue.log");
  const std::string plain_config = dir.Write("plain.yaml", "http: {port: 0}\n" + plain_broker + experts);
  Process plain(testing::BinDir() + "/thalamus-expert",
                {"--config", plain_config, "--expert", "echo", "--backend", backend}, dir.path() + "/plain.log");
  EXPECT_TRUE(WaitFor(
      [&] {
        return HttpRequest(port, "GET", "/metrics").body.find("thalamus_auth_failures_total{endpoint=\"backend\"} 0") ==
               std::string::npos;
      },
      10s))
      << testing::ReadFile(log);
  std::this_thread::sleep_for(1s);  // ten heartbeats: time enough for either to have joined
  EXPECT_EQ(LiveWorkers(port), 1);
  EXPECT_TRUE(rogue.Running());
  EXPECT_NE(testing::ReadFile(log).find("key"), std::string::npos);
  EXPECT_NE(testing::ReadFile(log).find("is not authorized"), std::string::npos);
  for (int i = 0; i < 5; ++i) {
    const auto again = HttpRequest(port, "POST", "/v1/chat/completions", chat.dump());
    EXPECT_EQ(again.status, 200) << again.body;
  }
}

// The ZeroMQ front end with CURVE, asked by `thalamus query` as a client on
// another host would: an authorized key is answered, an unknown key and a
// plaintext client are refused, and the tool says which.
TEST(CurveIntegration, OnlyClientsWithAuthorizedKeysAreAnswered) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/clients");
  for (const char* name : {"router", "client", "rogue"}) GenerateKeys(dir.path() + "/" + name);
  std::filesystem::copy_file(dir.path() + "/client.pub", dir.path() + "/clients/client.pub");
  const std::string config =
      dir.Write("thalamus.yaml",
                "http: {port: 0}\n"
                "broker:\n  frontend: \"tcp://127.0.0.1:*\"\n  backend: \"tcp://127.0.0.1:*\"\n"
                "  frontend_curve: {router_key: router.key, router_public_key: router.pub, authorized_keys: clients}\n"
                "experts:\n  - {name: echo, kind: echo, replicas: 1}\n");
  ReadyRouter router(dir, config);
  const int port = router.port;
  const std::string& log = router.log;
  const json& info = router.info;
  // Runs `thalamus query` with `keys` (client key, router public key; none: plaintext).
  auto ask = [&](const std::string& name, const std::vector<std::string>& keys, std::string* output) {
    std::vector<std::string> args = {"query", "--frontend", info["frontend"], "--timeout-ms", "5000"};
    if (!keys.empty()) args.insert(args.end(), {"--curve-key", keys[0], "--server-key", keys[1]});
    args.push_back("hello " + name);
    const std::string out = dir.path() + "/" + name + ".out";
    Process query(testing::BinDir() + "/thalamus", args, out);
    const int code = query.Wait(20s);
    *output = testing::ReadFile(out);
    return code;
  };
  std::string output;
  const std::string router_pub = dir.path() + "/router.pub";
  EXPECT_EQ(ask("client", {dir.path() + "/client.key", router_pub}, &output), 0) << output;
  EXPECT_NE(output.find("hello client"), std::string::npos) << output;
  EXPECT_EQ(ask("rogue", {dir.path() + "/rogue.key", router_pub}, &output), 3) << output;
  EXPECT_NE(output.find("the router refused this client's key"), std::string::npos) << output;
  EXPECT_EQ(ask("plain", {}, &output), 3) << output;
  EXPECT_NE(testing::ReadFile(log).find("on frontend: key"), std::string::npos) << testing::ReadFile(log);
  EXPECT_NE(HttpRequest(port, "GET", "/metrics").body.find("thalamus_auth_failures_total{endpoint=\"frontend\"} 1"),
            std::string::npos);
}

TEST(CurveIntegration, AMissingKeyFileStopsTheRouterNamingIt) {
  testing::TempDir dir;
  const std::string config =
      dir.Write("thalamus.yaml",
                "http: {port: 0}\nbroker:\n  frontend: \"\"\n  backend: \"tcp://127.0.0.1:*\"\n"
                "  curve: {router_key: nowhere.key, router_public_key: nowhere.pub, authorized_keys: experts}\n"
                "experts:\n  - {name: echo, kind: echo}\n");
  const std::string log = dir.path() + "/router.log";
  Process router(testing::BinDir() + "/thalamus-router", {"--config", config}, log);
  EXPECT_EQ(router.Wait(20s), 1);
  EXPECT_NE(testing::ReadFile(log).find("cannot read the authorized keys folder"), std::string::npos)
      << testing::ReadFile(log);
}

}  // namespace
}  // namespace thalamus
