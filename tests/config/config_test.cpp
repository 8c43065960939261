#include "config/config.h"

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace thalamus::config {
namespace {

std::string ErrorOf(const std::string& yaml) {
  try {
    LoadString(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, EmbeddedDefaultLoads) {
  Config cfg = LoadDefault();
  ASSERT_FALSE(cfg.experts.empty());
  EXPECT_EQ(cfg.file, "config/default.yaml");
  // A trained gate, built from shipped examples (paths relative to the working directory).
  EXPECT_EQ(cfg.gate.path, "data/gate/default.pt");
  EXPECT_EQ(cfg.gate.train_data, "examples/gate/default-train.jsonl");
}

TEST(Config, ParsesAnExpertBlock) {
  Config cfg = LoadString(R"(
http: {port: 0, threads: 3}
broker: {backend: "tcp://127.0.0.1:*", frontend: "", heartbeat_ms: 100}
experts:
  - name: echo-a
    kind: echo
    replicas: 3
    delay_ms: 20
    failure_rate: 0.25
  - name: docs
    kind: rag
    index: /tmp/idx
)",
                          "t.yaml");
  EXPECT_EQ(cfg.http.port, 0);
  EXPECT_EQ(cfg.http.threads, 3);
  EXPECT_EQ(cfg.broker.backend, "tcp://127.0.0.1:*");
  EXPECT_EQ(cfg.broker.frontend, "");
  ASSERT_EQ(cfg.experts.size(), 2u);
  EXPECT_EQ(cfg.experts[0].replicas, 3);
  EXPECT_DOUBLE_EQ(cfg.experts[0].failure_rate, 0.25);
  EXPECT_EQ(cfg.experts[0].line, 5);
  EXPECT_EQ(cfg.experts[1].domain, "docs");  // defaults to the name
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(ErrorOf("experts:\n  - name: a\n    kind: echo\n    replicas: lots\n"),
            "test.yaml:4:15: experts[0].replicas: must be an integer, got 'lots'");
  EXPECT_EQ(ErrorOf("experts:\n  - name: a\n    kind: echo\n    colour: red\n"),
            "test.yaml:4:5: experts[0].colour: unknown key");
  EXPECT_EQ(ErrorOf("experts:\n  - name: a\n    kind: echo\n    model: /m\n"),
            "test.yaml:4:5: experts[0].model: unknown key");  // a mamba key on an echo expert
  EXPECT_EQ(ErrorOf("experts:\n  - name: a\n    kind: wizard\n"),
            "test.yaml:3:11: experts[0].kind: unknown kind 'wizard' (expected echo, mamba, transformer or rag)");
  EXPECT_EQ(ErrorOf("http:\n  port: 70000\nexperts:\n  - {name: a, kind: echo}\n"),
            "test.yaml:2:9: http.port: must be between 0 and 65535, got 70000");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: a, kind: echo}\n  - {name: a, kind: echo}\n"),
            "test.yaml:3:12: experts[1].name: duplicate expert name 'a'");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: m, kind: mamba}\n"),
            "test.yaml:2:5: experts[0].model: is required for kind mamba");
  EXPECT_EQ(ErrorOf("broker:\n  backend: localhost:5556\nexperts:\n  - {name: a, kind: echo}\n"),
            "test.yaml:2:12: broker.backend: must be a ZeroMQ endpoint like tcp://127.0.0.1:5556, tcp://0.0.0.0:* or "
            "ipc:///tmp/x, got 'localhost:5556'");
  EXPECT_EQ(ErrorOf("gate:\n  default_expert: nobody\nexperts:\n  - {name: a, kind: echo}\n"),
            "test.yaml:2:19: gate.default_expert: names no configured expert: 'nobody'");
  EXPECT_EQ(ErrorOf("gate:\n  train_data: examples.jsonl\nexperts:\n  - {name: a, kind: echo}\n"),
            "test.yaml:2:15: gate.train_data: needs gate.path, the file the trained gate is written to");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: m, kind: mamba, model: w, dtype: float16}\n"),
            "test.yaml:2:45: experts[0].dtype: must be one of float32, bfloat16, got 'float16'");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: 'a b', kind: echo}\n"),
            "test.yaml:2:12: experts[0].name: must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or "
            "digit, got 'a b'");
  EXPECT_EQ(ErrorOf("experts: []\n"), "test.yaml:1:10: experts: at least one expert is required");
  EXPECT_EQ(ErrorOf("bogus: 1\nexperts:\n  - {name: a, kind: echo}\n"), "test.yaml:1:1: bogus: unknown key");
}

TEST(Config, SyntaxErrorsAndOtherShapes) {
  EXPECT_EQ(ErrorOf("experts: [\n"), "test.yaml:2:1: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(ErrorOf("- just\n- a list\n"), "test.yaml:1:1: the top level must be a map");
  EXPECT_EQ(ErrorOf("experts:\n  - 5\n"), "test.yaml:2:5: experts[0]: must be a map of keys");
  EXPECT_EQ(ErrorOf("http: 8080\nexperts:\n  - {name: a, kind: echo}\n"), "test.yaml:1:7: http: must be a map of keys");
}

// Closed sets of values arrive as enums; Name gives back the file's spelling.
TEST(Config, ClosedSetsAreParsedIntoEnumsOnce) {
  Config cfg = LoadString(R"(
aggregation: ralm
experts:
  - {name: m, kind: mamba, model: w, dtype: bfloat16, device: "cuda:1", context_policy: truncate_left, launch: external}
  - {name: t, kind: transformer, model: w, device: cuda}
  - {name: d, kind: rag, index: i, index_type: ivf, chunk_unit: tokens}
  - {name: e, kind: echo}
)",
                          "t.yaml");
  EXPECT_EQ(cfg.aggregation, Aggregation::kRalm);
  const ExpertConfig& m = cfg.experts[0];
  EXPECT_EQ(m.kind, ExpertKind::kMamba);
  EXPECT_EQ(m.dtype, DType::kBFloat16);
  EXPECT_EQ(m.device, (Device{Device::Type::kCuda, 1}));
  EXPECT_EQ(m.context_policy, ContextPolicy::kTruncateLeft);
  EXPECT_EQ(m.launch, Launch::kExternal);
  EXPECT_EQ(cfg.experts[1].kind, ExpertKind::kTransformer);
  EXPECT_EQ(cfg.experts[1].device, (Device{Device::Type::kCuda, -1}));
  EXPECT_EQ(cfg.experts[1].launch, Launch::kLocal);
  EXPECT_EQ(cfg.experts[2].index_type, IndexType::kIvf);
  EXPECT_EQ(cfg.experts[2].chunk_unit, ChunkUnit::kTokens);
  EXPECT_EQ(cfg.experts[3].device, Device{});
  EXPECT_EQ(cfg.experts[3].dtype, DType::kFloat32);

  EXPECT_STREQ(Name(m.kind), "mamba");
  EXPECT_STREQ(Name(cfg.aggregation), "ralm");
  EXPECT_STREQ(Name(m.context_policy), "truncate_left");
  EXPECT_STREQ(Name(m.dtype), "bfloat16");
  EXPECT_STREQ(Name(cfg.experts[2].chunk_unit), "tokens");
  EXPECT_EQ(Name(m.device), "cuda:1");
  EXPECT_EQ(Name(cfg.experts[1].device), "cuda");
  EXPECT_EQ(Name(Device{}), "cpu");
  EXPECT_TRUE(IsGenerator(ExpertKind::kTransformer));
  EXPECT_FALSE(IsGenerator(ExpertKind::kRag));
}

TEST(Config, BadDevicesAndAggregationsNameTheKey) {
  for (const char* device : {"cudafoo", "cuda:", "cuda:x", "cuda:1234", "gpu", "CPU"}) {
    EXPECT_NE(ErrorOf(std::string("experts:\n  - {name: m, kind: mamba, model: w, device: \"") + device + "\"}\n")
                  .find("experts[0].device: must be cpu, cuda or cuda:N, got '" + std::string(device) + "'"),
              std::string::npos)
        << device;
  }
  EXPECT_EQ(ErrorOf("aggregation: best\nexperts:\n  - {name: a, kind: echo}\n"),
            "test.yaml:1:14: aggregation: must be one of top1, weighted, concat, ralm, got 'best'");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: a, kind: echo, launch: remote}\n"),
            "test.yaml:2:35: experts[0].launch: must be one of local, external, got 'remote'");
}

TEST(Config, CurveSectionsNameKeyFiles) {
  testing::TempDir dir;
  const std::string file = dir.Write("c.yaml", R"(broker:
  curve: {router_key: keys/router.key, router_public_key: keys/router.pub, authorized_keys: keys/experts,
          client_key: keys/expert.key}
  frontend_curve: {router_key: keys/router.key, router_public_key: keys/router.pub, authorized_keys: keys/clients}
experts:
  - {name: a, kind: echo}
)");
  const Config cfg = LoadFile(file);
  EXPECT_TRUE(cfg.broker.curve.enabled);
  EXPECT_EQ(cfg.broker.curve.router_key, dir.path() + "/keys/router.key");
  EXPECT_EQ(cfg.broker.curve.authorized_keys, dir.path() + "/keys/experts");
  EXPECT_EQ(cfg.broker.curve.client_key, dir.path() + "/keys/expert.key");
  EXPECT_TRUE(cfg.broker.frontend_curve.enabled);
  EXPECT_EQ(cfg.broker.frontend_curve.authorized_keys, dir.path() + "/keys/clients");
  EXPECT_FALSE(LoadString("experts:\n  - {name: a, kind: echo}\n", "t.yaml").broker.curve.enabled);
  EXPECT_EQ(
      ErrorOf("broker:\n  curve: {router_key: r.key, router_public_key: r.pub}\nexperts:\n  - {name: a, kind: echo}\n"),
      "test.yaml:2:10: broker.curve.authorized_keys: is required");
  EXPECT_EQ(ErrorOf("broker:\n  frontend_curve: {router_key: r.key, router_public_key: r.pub, authorized_keys: k, "
                    "client_key: c.key}\nexperts:\n  - {name: a, kind: echo}\n"),
            "test.yaml:2:85: broker.frontend_curve.client_key: unknown key");
}

TEST(Config, HttpApiKeysAndOpenEndpoints) {
  const Config open = LoadString("experts:\n  - {name: a, kind: echo}\n", "t.yaml");
  EXPECT_EQ(open.http.api_keys, "");
  EXPECT_TRUE(open.http.open_healthz && open.http.open_readyz && open.http.open_metrics);
  const Config keyed = LoadString(
      "http: {api_keys: /etc/thalamus/api-keys, open_endpoints: [healthz]}\nexperts:\n  - {name: a, kind: echo}\n",
      "t.yaml");
  EXPECT_EQ(keyed.http.api_keys, "/etc/thalamus/api-keys");
  EXPECT_TRUE(keyed.http.open_healthz);
  EXPECT_FALSE(keyed.http.open_readyz);
  EXPECT_FALSE(keyed.http.open_metrics);
  EXPECT_NE(ErrorOf("http: {open_endpoints: [healthz, v1]}\nexperts:\n  - {name: a, kind: echo}\n")
                .find("http.open_endpoints: must list healthz, readyz or metrics, got 'v1'"),
            std::string::npos);
}

TEST(Config, RagBlocksTakeSourcesAndIndexOptions) {
  testing::TempDir dir;
  std::string file = dir.Write("c.yaml", R"(experts:
  - name: docs
    kind: rag
    index: idx/docs
    index_type: hnsw
    chunk_size: 400
    chunk_overlap: 50
    sources: [README.md, docs]
    include: "*.md"
    ef_search: 128
)");
  Config cfg = LoadFile(file);
  const ExpertConfig& docs = cfg.experts[0];
  EXPECT_EQ(docs.index_type, config::IndexType::kHnsw);
  EXPECT_EQ(docs.chunk_size, 400);
  EXPECT_EQ(docs.sources, (std::vector<std::string>{dir.path() + "/README.md", dir.path() + "/docs"}));
  EXPECT_EQ(docs.include, std::vector<std::string>{"*.md"});
  EXPECT_EQ(docs.ef_search, 128);
  EXPECT_EQ(ErrorOf("experts:\n  - {name: d, kind: rag, index: i, chunk_size: 100, chunk_overlap: 100}\n"),
            "test.yaml:2:68: experts[0].chunk_overlap: must be smaller than chunk_size");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: d, kind: rag, index: i, sources: [a, {b: 1}]}\n"),
            "test.yaml:2:49: experts[0].sources[1]: must be a non-empty string");
  EXPECT_EQ(ErrorOf("experts:\n  - {name: d, kind: rag, index: i, index_type: lsh}\n"),
            "test.yaml:2:48: experts[0].index_type: must be one of flat, ivf, hnsw, got 'lsh'");
}

TEST(Config, EmbeddedDefaultPathsAreRelativeToTheWorkingDirectory) {
  Config cfg = LoadDefault();
  for (const ExpertConfig& expert : cfg.experts) {
    for (const std::string& source : expert.sources) EXPECT_NE(source.rfind("config/", 0), 0u) << source;
    if (!expert.index.empty()) {
      EXPECT_NE(expert.index.rfind("config/", 0), 0u) << expert.index;
    }
  }
}

TEST(Config, MissingFileIsAConfigError) { EXPECT_THROW(LoadFile("/nonexistent/thalamus.yaml"), ConfigError); }

TEST(Config, RelativePathsResolveAgainstTheConfigFolder) {
  testing::TempDir dir;
  std::string file = dir.Write("c.yaml", "experts:\n  - {name: d, kind: rag, index: indexes/d}\n");
  Config cfg = LoadFile(file);
  EXPECT_EQ(cfg.experts[0].index, dir.path() + "/indexes/d");
}

}  // namespace
}  // namespace thalamus::config
