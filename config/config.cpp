#include "config/config.h"

#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "config/yaml_reader.h"

namespace thalamus::config {
namespace {

// The spelling of each enum value in the file, in the order error messages list them.
template <typename E>
struct Choice {
  const char* name;
  E value;
};
constexpr Choice<ExpertKind> kKinds[] = {{"echo", ExpertKind::kEcho},
                                         {"mamba", ExpertKind::kMamba},
                                         {"transformer", ExpertKind::kTransformer},
                                         {"rag", ExpertKind::kRag}};
constexpr Choice<Aggregation> kAggregations[] = {{"top1", Aggregation::kTop1},
                                                 {"weighted", Aggregation::kWeighted},
                                                 {"concat", Aggregation::kConcat},
                                                 {"ralm", Aggregation::kRalm}};
constexpr Choice<Launch> kLaunches[] = {{"local", Launch::kLocal}, {"external", Launch::kExternal}};
constexpr Choice<DType> kDTypes[] = {{"float32", DType::kFloat32}, {"bfloat16", DType::kBFloat16}};
constexpr Choice<ContextPolicy> kContextPolicies[] = {{"error", ContextPolicy::kError},
                                                      {"truncate_left", ContextPolicy::kTruncateLeft}};
constexpr Choice<IndexType> kIndexTypes[] = {
    {"flat", IndexType::kFlat}, {"ivf", IndexType::kIvf}, {"hnsw", IndexType::kHnsw}};
constexpr Choice<ChunkUnit> kChunkUnits[] = {{"chars", ChunkUnit::kChars}, {"tokens", ChunkUnit::kTokens}};

template <typename E, size_t N>
const char* NameIn(const Choice<E> (&choices)[N], E value) {
  for (const Choice<E>& choice : choices) {
    if (choice.value == value) return choice.name;
  }
  return "?";
}

template <typename E, size_t N>
const E* FindIn(const Choice<E> (&choices)[N], const std::string& name) {
  for (const Choice<E>& choice : choices) {
    if (name == choice.name) return &choice.value;
  }
  return nullptr;
}

// `key`'s value as one of `choices`, `fallback` when absent.
template <typename E, size_t N>
E OneOf(const MapReader& map, const std::string& key, E fallback, const Choice<E> (&choices)[N]) {
  const std::string text = map.String(key, NameIn(choices, fallback));
  if (const E* value = FindIn(choices, text)) return *value;
  std::string expected;
  for (const Choice<E>& choice : choices) expected += (expected.empty() ? "" : ", ") + std::string(choice.name);
  map.Fail(key, "must be one of " + expected + ", got '" + text + "'");
}

// cpu, cuda or cuda:N (N a GPU number, 0-255).
Device ParseDevice(const MapReader& map, const Device& fallback) {
  const std::string text = map.String("device", Name(fallback));
  if (text == "cpu") return {};
  if (text == "cuda") return {Device::Type::kCuda, -1};
  const std::string prefix = "cuda:";
  const std::string digits = text.rfind(prefix, 0) == 0 ? text.substr(prefix.size()) : "";
  if (!digits.empty() && digits.size() <= 3 && digits.find_first_not_of("0123456789") == std::string::npos &&
      std::stoi(digits) <= 255) {
    return {Device::Type::kCuda, std::stoi(digits)};
  }
  map.Fail("device", "must be cpu, cuda or cuda:N, got '" + text + "'");
}

// Keys every expert block may have, and the extra keys of each kind.
const std::set<std::string> kCommonExpertKeys = {"name",    "kind",        "replicas",    "launch",     "device",
                                                 "threads", "concurrency", "queue_limit", "description"};
const std::set<std::string>& KindKeys(ExpertKind kind) {
  static const std::set<std::string> echo = {"delay_ms", "failure_rate", "prefix"};
  static const std::set<std::string> language_model = {"model",     "tokenizer",   "dtype",
                                                       "max_batch", "max_context", "context_policy"};
  static const std::set<std::string> rag = {"domain",     "index",         "top_k",      "embedder", "index_type",
                                            "chunk_size", "chunk_overlap", "chunk_unit", "sources",  "include",
                                            "exclude",    "nprobe",        "ef_search"};
  switch (kind) {
    case ExpertKind::kEcho: return echo;
    case ExpertKind::kMamba:
    case ExpertKind::kTransformer: return language_model;
    case ExpertKind::kRag: return rag;
  }
  return echo;
}

void ParseHttp(const MapReader& map, HttpConfig& http) {
  http.host = map.String("host", http.host);
  http.port = map.Int("port", http.port, 0, 65535);
  http.threads = map.Int("threads", http.threads, 0, 256);
  http.max_body_bytes =
      static_cast<size_t>(map.Int("max_body_bytes", static_cast<int>(http.max_body_bytes), 1024, 1 << 30));
  http.max_connections = map.Int("max_connections", http.max_connections, 1, 1 << 20);
  http.read_timeout_ms = map.Int("read_timeout_ms", http.read_timeout_ms, 100, 3600 * 1000);
  http.api_keys = map.Path("api_keys", http.api_keys);
  if (map.Has("open_endpoints")) {
    http.open_healthz = http.open_readyz = http.open_metrics = false;
    for (const std::string& name : map.StringList("open_endpoints")) {
      bool* open = name == "healthz"   ? &http.open_healthz
                   : name == "readyz"  ? &http.open_readyz
                   : name == "metrics" ? &http.open_metrics
                                       : nullptr;
      if (!open) map.Fail("open_endpoints", "must list healthz, readyz or metrics, got '" + name + "'");
      *open = true;
    }
  }
  map.RejectUnknown();
}

// Key files are paths, checked by the processes that read them (a router's
// secret key need not exist on an expert's host).
void ParseCurve(const MapReader& map, CurveConfig& curve, bool backend) {
  curve.enabled = true;
  for (const char* key : {"router_key", "router_public_key", "authorized_keys"}) map.RequiredString(key);
  curve.router_key = map.Path("router_key", "");
  curve.router_public_key = map.Path("router_public_key", "");
  curve.authorized_keys = map.Path("authorized_keys", "");
  if (backend) curve.client_key = map.Path("client_key", "");
  map.RejectUnknown();
}

void ParseBroker(const MapReader& map, BrokerConfig& broker) {
  broker.frontend = map.String("frontend", broker.frontend);
  broker.backend = map.Endpoint("backend", broker.backend);
  if (!broker.frontend.empty()) map.Endpoint("frontend", broker.frontend);
  broker.heartbeat_ms = map.Int("heartbeat_ms", broker.heartbeat_ms, 10, 60000);
  broker.liveness = map.Int("liveness", broker.liveness, 1, 100);
  broker.queue_limit = map.Int("queue_limit", broker.queue_limit, 0, 1 << 24);
  broker.default_deadline_ms = map.Int("default_deadline_ms", broker.default_deadline_ms, 1, 24 * 3600 * 1000);
  broker.retry_after_ms = map.Int("retry_after_ms", broker.retry_after_ms, 0, 3600 * 1000);
  broker.max_workers_per_service = map.Int("max_workers_per_service", broker.max_workers_per_service, 1, 1 << 20);
  broker.max_workers = map.Int("max_workers", broker.max_workers, 1, 1 << 20);
  broker.max_message_bytes = map.Int("max_message_bytes", broker.max_message_bytes, 4096, 1 << 30);
  broker.frontend_max_in_flight = map.Int("frontend_max_in_flight", broker.frontend_max_in_flight, 1, 1 << 20);
  broker.frontend_send_hwm = map.Int("frontend_send_hwm", broker.frontend_send_hwm, 1, 1 << 24);
  broker.drain_grace_ms = map.Int("drain_grace_ms", broker.drain_grace_ms, 0, 3600 * 1000);
  if (auto node = map.Child("curve")) ParseCurve(*node, broker.curve, /*backend=*/true);
  if (auto node = map.Child("frontend_curve")) ParseCurve(*node, broker.frontend_curve, /*backend=*/false);
  map.RejectUnknown();
}

void ParseGate(const MapReader& map, GateConfig& gate) {
  gate.path = map.Path("path", gate.path);
  gate.train_data = map.Path("train_data", gate.train_data);
  if (!gate.train_data.empty() && gate.path.empty()) {
    map.Fail("train_data", "needs gate.path, the file the trained gate is written to");
  }
  gate.top_k = map.Int("top_k", gate.top_k, 1, 64);
  gate.threshold = map.Double("threshold", gate.threshold, 0.0, 1.0);
  gate.default_expert = map.String("default_expert", gate.default_expert);
  gate.load_aware = map.Bool("load_aware", gate.load_aware);
  gate.load_alpha = map.Double("load_alpha", gate.load_alpha, 0.0, 100.0);
  gate.context_aware = map.Bool("context_aware", gate.context_aware);
  gate.long_context_tokens = map.Int("long_context_tokens", gate.long_context_tokens, 1, 1 << 24);
  gate.long_context_boost = map.Double("long_context_boost", gate.long_context_boost, 1.0, 1e6);
  map.RejectUnknown();
}

void ParseRalm(const MapReader& map, RalmConfig& ralm) {
  ralm.k = map.Int("k", ralm.k, 1, 1000);
  ralm.prompt_template = map.String("template", ralm.prompt_template);
  for (const char* placeholder : {"{context}", "{question}"}) {
    if (ralm.prompt_template.find(placeholder) == std::string::npos) {
      map.Fail("template", std::string("must contain the ") + placeholder + " placeholder");
    }
  }
  ralm.max_prompt_tokens = map.Int("max_prompt_tokens", ralm.max_prompt_tokens, 0, 1 << 24);
  map.RejectUnknown();
}

void ParseSupervisor(const MapReader& map, SupervisorConfig& supervisor) {
  supervisor.enabled = map.Bool("enabled", supervisor.enabled);
  supervisor.restart_backoff_ms = map.Int("restart_backoff_ms", supervisor.restart_backoff_ms, 1, 600000);
  supervisor.max_restart_backoff_ms =
      map.Int("max_restart_backoff_ms", supervisor.max_restart_backoff_ms, supervisor.restart_backoff_ms, 3600000);
  map.RejectUnknown();
}

ExpertConfig ParseExpert(const MapReader& map) {
  ExpertConfig e;
  e.file = map.file();
  e.line = map.line();
  e.name = map.RequiredString("name");
  map.CheckName("name", e.name);
  const std::string kind = map.RequiredString("kind");
  const ExpertKind* known = FindIn(kKinds, kind);
  if (!known) map.Fail("kind", "unknown kind '" + kind + "' (expected echo, mamba, transformer or rag)");
  e.kind = *known;
  std::set<std::string> allowed = kCommonExpertKeys;
  allowed.insert(KindKeys(e.kind).begin(), KindKeys(e.kind).end());

  e.replicas = map.Int("replicas", e.replicas, 0, 1024);
  e.launch = OneOf(map, "launch", e.launch, kLaunches);
  e.device = ParseDevice(map, e.device);
  e.threads = map.Int("threads", e.threads, 1, 1024);
  e.concurrency = map.Int("concurrency", e.concurrency, 1, 4096);
  e.queue_limit = map.Int("queue_limit", e.queue_limit, 0, 1 << 20);
  e.description = map.String("description", e.description);

  e.delay_ms = map.Int("delay_ms", e.delay_ms, 0, 3600 * 1000);
  e.failure_rate = map.Double("failure_rate", e.failure_rate, 0.0, 1.0);
  e.prefix = map.String("prefix", e.prefix);

  e.model = map.Path("model", e.model);
  e.tokenizer = map.Path("tokenizer", e.tokenizer);
  e.dtype = OneOf(map, "dtype", e.dtype, kDTypes);
  e.max_batch = map.Int("max_batch", e.max_batch, 1, 1024);
  e.max_context = map.Int("max_context", e.max_context, 0, 1 << 24);
  e.context_policy = OneOf(map, "context_policy", e.context_policy, kContextPolicies);
  if (IsGenerator(e.kind) && e.model.empty()) map.Fail("model", "is required for kind " + kind);

  e.domain = map.String("domain", e.domain);
  e.index = map.Path("index", e.index);
  e.top_k = map.Int("top_k", e.top_k, 1, 1000);
  e.embedder = map.String("embedder", e.embedder);
  e.index_type = OneOf(map, "index_type", e.index_type, kIndexTypes);
  e.chunk_size = map.Int("chunk_size", e.chunk_size, 16, 1 << 20);
  e.chunk_overlap = map.Int("chunk_overlap", e.chunk_overlap, 0, 1 << 20);
  if (e.chunk_overlap >= e.chunk_size) map.Fail("chunk_overlap", "must be smaller than chunk_size");
  e.chunk_unit = OneOf(map, "chunk_unit", e.chunk_unit, kChunkUnits);
  e.sources = map.PathList("sources");
  e.include = map.StringList("include");
  e.exclude = map.StringList("exclude");
  e.nprobe = map.Int("nprobe", e.nprobe, 0, 1 << 20);
  e.ef_search = map.Int("ef_search", e.ef_search, 0, 1 << 20);
  if (e.kind == ExpertKind::kRag && e.index.empty()) map.Fail("index", "is required for kind rag");
  if (e.kind == ExpertKind::kRag && e.domain.empty()) e.domain = e.name;

  map.RejectUnknown(allowed);
  return e;
}

Config Parse(const YAML::Node& root, const std::string& file) {
  Config cfg;
  cfg.file = file;
  MapReader top(root, file, "");
  if (auto node = top.Child("http")) ParseHttp(*node, cfg.http);
  if (auto node = top.Child("broker")) ParseBroker(*node, cfg.broker);
  if (auto node = top.Child("gate")) ParseGate(*node, cfg.gate);
  if (auto node = top.Child("ralm")) ParseRalm(*node, cfg.ralm);
  if (auto node = top.Child("supervisor")) ParseSupervisor(*node, cfg.supervisor);
  cfg.aggregation = OneOf(top, "aggregation", cfg.aggregation, kAggregations);
  std::set<std::string> names;
  for (const MapReader& block : top.List("experts")) {
    ExpertConfig expert = ParseExpert(block);
    if (!names.insert(expert.name).second) block.Fail("name", "duplicate expert name '" + expert.name + "'");
    cfg.experts.push_back(std::move(expert));
  }
  if (cfg.experts.empty()) top.Fail("experts", "at least one expert is required");
  if (!cfg.gate.default_expert.empty() && !cfg.FindExpert(cfg.gate.default_expert)) {
    top.Child("gate")->Fail("default_expert", "names no configured expert: '" + cfg.gate.default_expert + "'");
  }
  top.RejectUnknown();
  return cfg;
}

}  // namespace

const char* Name(ExpertKind kind) { return NameIn(kKinds, kind); }
const char* Name(Aggregation aggregation) { return NameIn(kAggregations, aggregation); }
const char* Name(Launch launch) { return NameIn(kLaunches, launch); }
const char* Name(DType dtype) { return NameIn(kDTypes, dtype); }
const char* Name(ContextPolicy policy) { return NameIn(kContextPolicies, policy); }
const char* Name(IndexType type) { return NameIn(kIndexTypes, type); }
const char* Name(ChunkUnit unit) { return NameIn(kChunkUnits, unit); }
std::string Name(const Device& device) {
  if (device.type == Device::Type::kCpu) return "cpu";
  return device.index < 0 ? "cuda" : "cuda:" + std::to_string(device.index);
}

const ExpertConfig* Config::FindExpert(const std::string& name) const {
  for (const ExpertConfig& e : experts) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

Config LoadString(const std::string& yaml, const std::string& file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    std::ostringstream message;
    message << file_name << ":" << e.mark.line + 1 << ":" << e.mark.column + 1 << ": YAML syntax error: " << e.msg;
    throw ConfigError(message.str());
  }
  if (!root.IsMap()) throw ConfigError(file_name + ":1:1: the top level must be a map");
  return Parse(root, file_name);
}

Config LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot read the config file");
  std::ostringstream text;
  text << in.rdbuf();
  return LoadString(text.str(), path);
}

Config LoadDefault() { return LoadString(DefaultYaml(), kEmbeddedDefaultName); }

}  // namespace thalamus::config
