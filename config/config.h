// config: the YAML file that describes a Thalamus deployment.
//
// One file names the router's endpoints, the gate, the aggregation strategy
// and every expert service. Adding an expert is adding a block under
// `experts:`. Loading validates everything up front; any unknown key, wrong
// type or bad value throws ConfigError whose message names the file, the line
// and the key ("config.yaml:12:5: experts[1].replicas: must be >= 1").
// config/default.yaml is compiled into the binaries as the embedded default.
// Closed sets of values (kind, aggregation, launch, device, dtype,
// context_policy, index_type, chunk_unit) are enums, checked here once; other
// modules switch on them and never validate them again.
#pragma once

#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace thalamus::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ExpertKind { kEcho, kMamba, kTransformer, kRag };
enum class Aggregation { kTop1, kWeighted, kConcat, kRalm };
enum class Launch { kLocal, kExternal };
// No float16: LibTorch on the CPU lacks half-precision kernels for much of a forward pass.
enum class DType { kFloat32, kBFloat16 };
enum class ContextPolicy { kError, kTruncateLeft };
enum class IndexType { kFlat, kIvf, kHnsw };
enum class ChunkUnit { kChars, kTokens };

// cpu, cuda (the current GPU) or cuda:N.
struct Device {
  enum class Type { kCpu, kCuda };
  Type type = Type::kCpu;
  int index = -1;  // cuda:N; -1 for cpu and plain cuda
  bool operator==(const Device&) const = default;
};

// Each value as the config file spells it ("mamba", "truncate_left",
// "cuda:1", ...): for messages, logs, metrics labels and the trace.
const char* Name(ExpertKind kind);
const char* Name(Aggregation aggregation);
const char* Name(Launch launch);
const char* Name(DType dtype);
const char* Name(ContextPolicy policy);
const char* Name(IndexType type);
const char* Name(ChunkUnit unit);
std::string Name(const Device& device);

// mamba and transformer: the kinds that generate text.
inline bool IsGenerator(ExpertKind kind) { return kind == ExpertKind::kMamba || kind == ExpertKind::kTransformer; }

struct HttpConfig {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: an ephemeral port
  int threads = 0;  // 0: on the router's event loop thread
  size_t max_body_bytes = 1 << 20;
  // Bounds that hold against clients that open and hold connections:
  // connections beyond max_connections get a 503 and are closed at once; a
  // request whose header and body take longer than read_timeout_ms to arrive
  // (idle keep-alive time included) closes its connection.
  int max_connections = 4096;
  int read_timeout_ms = 60000;
  // API keys (security/api_keys.h): a file of hashed keys; "" lets every
  // request in. With keys, every endpoint but the open ones wants
  // `Authorization: Bearer KEY`.
  std::string api_keys;
  bool open_healthz = true;  // http.open_endpoints: [healthz, readyz, metrics] by default
  bool open_readyz = true;
  bool open_metrics = true;
};

// CURVE on one ZeroMQ endpoint (security/curve_keys.h for the key files,
// written by `thalamus keys generate`). Absent: plaintext, no authentication.
struct CurveConfig {
  bool enabled = false;
  std::string router_key;         // the router's key pair (.key): what it serves with
  std::string router_public_key;  // the router's public key (.pub): what its peers check it by
  std::string authorized_keys;    // folder of the *.pub files whose holders may connect
  std::string client_key;         // backend only: the key pair experts connect with (--curve-key overrides)
};

struct BrokerConfig {
  std::string frontend = "tcp://127.0.0.1:5555";  // ZeroMQ front end for clients; "" disables
  std::string backend = "tcp://127.0.0.1:5556";   // experts connect here
  int heartbeat_ms = 250;
  int liveness = 3;        // missed heartbeats before a peer is dead
  int queue_limit = 1024;  // waiting requests per service before 429
  int default_deadline_ms = 60000;
  int retry_after_ms = 1000;  // advertised in 429/503 answers
  // Limits that hold against hostile peers. Workers may only serve services
  // this file names; a READY beyond these caps is refused.
  int max_workers_per_service = 256;
  int max_workers = 4096;
  // ZMQ_MAXMSGSIZE on both endpoints and on the experts' sockets: a larger
  // frame drops its sender's connection instead of being read whole.
  int max_message_bytes = 64 << 20;
  int frontend_max_in_flight = 64;  // unanswered queries per ZeroMQ client; more: 429 at once
  int frontend_send_hwm = 1000;     // answer frames queued for a ZeroMQ client that does not read
  // How long an expert told to stop (SIGTERM) keeps serving what it has in
  // flight after telling the broker it is leaving; what is still running then
  // is cancelled and retried on another worker.
  int drain_grace_ms = 30000;
  CurveConfig curve;                // the backend (experts)
  CurveConfig frontend_curve;       // the ZeroMQ front end (clients)
};

struct GateConfig {
  std::string path;  // trained gate file; "" means the fallback rule
  // Labelled examples ({"text", "expert"} per JSONL line). When set, the gate
  // file is derived data: the router trains `path` from them at start-up
  // when it is missing, older than the examples, or made for other services.
  std::string train_data;
  int top_k = 1;
  double threshold = 0.0;      // besides the best, only services at least this probable answer
  std::string default_expert;  // fallback rule: this service answers
  // Load-aware: each service's probability is multiplied by
  // exp(-load_alpha * (queued + in_flight) / (live_workers * concurrency)),
  // services without a live worker are skipped; then renormalised.
  bool load_aware = true;
  double load_alpha = 1.0;
  // Context-aware: a query longer than long_context_tokens (estimated) has
  // the probability of every `mamba` service multiplied by long_context_boost.
  bool context_aware = true;
  int long_context_tokens = 2048;
  double long_context_boost = 4.0;
};

// The `ralm` plan (aggregation: ralm): retrieve, then generate.
struct RalmConfig {
  int k = 4;  // passages given to the generator (a query's ralm_k overrides)
  // The generator's prompt; {context} becomes the numbered passages,
  // {question} the query (the last user message of a chat).
  std::string prompt_template =
      "Answer the question using the context.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:";
  // Prompt budget in tokens; 0: the generator's max_context minus the
  // request's max_tokens, or no limit when max_context is 0. Lowest-ranked
  // passages are dropped until the prompt fits.
  int max_prompt_tokens = 0;
};

struct ExpertConfig {
  std::string name;  // the service name clients and the gate use
  ExpertKind kind = ExpertKind::kEcho;
  int replicas = 1;
  Launch launch = Launch::kLocal;  // local: the router's supervisor starts it; external: started by hand
  Device device;
  int threads = 1;          // compute threads per replica
  int concurrency = 1;      // requests one replica works on at once
  int queue_limit = 2;      // requests one replica holds beyond concurrency (its pipeline depth)
  std::string description;  // shown in /v1/models

  // echo
  int delay_ms = 0;
  double failure_rate = 0.0;
  std::string prefix;  // echoed answer = prefix + prompt

  // mamba, transformer
  std::string model;      // checkpoint directory (config.json + *.safetensors)
  std::string tokenizer;  // tokenizer.json; default: <model>/tokenizer.json
  DType dtype = DType::kFloat32;
  int max_batch = 8;
  int max_context = 0;  // 0: the model's own limit
  ContextPolicy context_policy = ContextPolicy::kError;

  // rag
  std::string domain;
  std::string index;  // index directory written by `thalamus ingest`
  int top_k = 4;
  std::string embedder = "hashing";         // hashing | hashing:DIM | bert:DIR | DIR (sentence-transformers checkpoint)
  IndexType index_type = IndexType::kFlat;  // changing it rebuilds the index on the next ingest
  int chunk_size = 1000;                    // per chunk, in chunk_unit
  int chunk_overlap = 200;                  // shared with the previous chunk; < chunk_size
  ChunkUnit chunk_unit = ChunkUnit::kChars;
  std::vector<std::string>
      sources;  // files/directories the index is synced with at start (relative: to this file's directory)
  std::vector<std::string>
      include;  // glob patterns for files found in source directories ("*.md"); empty: all text files
  std::vector<std::string> exclude;  // glob patterns skipped
  int nprobe = 0;                    // ivf lists searched; 0: auto (nlist/32, at least 8)
  int ef_search = 0;                 // hnsw candidate list; 0: auto (64)

  // Where the block starts, for messages about it.
  std::string file;
  int line = 0;
};

struct SupervisorConfig {
  bool enabled = true;  // start `launch: local` experts from the router
  int restart_backoff_ms = 500;
  int max_restart_backoff_ms = 10000;
};

struct Config {
  std::string file;  // where it came from ("<embedded default>" for the default)
  HttpConfig http;
  BrokerConfig broker;
  GateConfig gate;
  RalmConfig ralm;
  SupervisorConfig supervisor;
  Aggregation aggregation = Aggregation::kTop1;
  std::vector<ExpertConfig> experts;

  // nullptr when no expert has this name.
  const ExpertConfig* FindExpert(const std::string& name) const;
};

// Throws ConfigError (and only ConfigError) for unreadable files, YAML syntax
// errors and invalid content.
Config LoadFile(const std::string& path);
Config LoadString(const std::string& yaml, const std::string& file_name);

// The name the embedded default goes by in messages. Its relative paths are
// relative to the working directory (the README runs it from the repository).
inline constexpr const char* kEmbeddedDefaultName = "config/default.yaml";

// The embedded config/default.yaml.
const std::string& DefaultYaml();
Config LoadDefault();

}  // namespace thalamus::config
