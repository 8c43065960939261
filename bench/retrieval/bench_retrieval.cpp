// bench_retrieval: approximate indexes against exact search, and ingest speed.
//
// 1. Search: N unit vectors (default 100k, dim 384) from a Gaussian mixture on
//    the sphere (clusters of related passages, as sentence embeddings form) or
//    uniform on the sphere (--uniform, the worst case for any ANN index).
//    The flat index is the baseline and the ground truth: for IVF (nprobe
//    sweep) and HNSW (efSearch sweep) it prints recall@10 and the p50 / p99
//    latency of single queries, one at a time, as the rag expert issues them.
// 2. Ingest: synthetic Markdown files through thalamus's Ingest with the
//    hashing embedder into a flat index: chunks per second end to end, and the
//    embedder alone.
//
//   bench_retrieval [--n 100000] [--dim 384] [--queries 1000] [--clusters 1000] [--noise 0.06]
//                   [--uniform] [--skip-hnsw] [--ingest-files 2000]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "retrieval/retrieval.h"

namespace {

using namespace thalamus::retrieval;
using Clock = std::chrono::steady_clock;

struct Args {
  size_t n = 100000;
  size_t dim = 384;
  size_t queries = 1000;
  bool uniform = false;
  size_t ingest_files = 2000;
  size_t clusters = 1000;
  float noise = 0.06f;  // per dimension; the centres have unit norm
  bool skip_hnsw = false;
};

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> size_t {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return std::stoul(argv[++i]);
    };
    if (a == "--n")
      args.n = next();
    else if (a == "--dim")
      args.dim = next();
    else if (a == "--queries")
      args.queries = next();
    else if (a == "--ingest-files")
      args.ingest_files = next();
    else if (a == "--clusters")
      args.clusters = next();
    else if (a == "--noise")
      args.noise = std::stof(argv[++i]);
    else if (a == "--skip-hnsw")
      args.skip_hnsw = true;
    else if (a == "--uniform")
      args.uniform = true;
    else
      throw std::invalid_argument("unknown argument " + a);
  }
  return args;
}

void Normalize(float* v, size_t dim) {
  double norm = 0;
  for (size_t j = 0; j < dim; ++j) norm += double(v[j]) * v[j];
  const float scale = float(1.0 / std::sqrt(norm));
  for (size_t j = 0; j < dim; ++j) v[j] *= scale;
}

// Points around random unit centres plus Gaussian noise (0.06 per dimension
// in 384 dimensions is a noise vector 1.2 times the centre's length: a point
// has cosine ~0.65 with its centre), or uniform on the sphere.
std::vector<float> Vectors(size_t n, size_t dim, bool uniform, std::mt19937& rng, const std::vector<float>& centres,
                           float noise = 0) {
  std::normal_distribution<float> normal;
  std::vector<float> v(n * dim);
  const size_t clusters = centres.size() / dim;
  for (size_t i = 0; i < n; ++i) {
    float* row = &v[i * dim];
    const float* centre = uniform ? nullptr : &centres[(rng() % clusters) * dim];
    for (size_t j = 0; j < dim; ++j) row[j] = normal(rng) * (uniform ? 1.0f : noise) + (uniform ? 0.0f : centre[j]);
    Normalize(row, dim);
  }
  return v;
}

struct Stats {
  double recall = 0, p50_ms = 0, p99_ms = 0, mean_ms = 0;
};

Stats Measure(const VectorIndex& index, const std::vector<float>& queries, size_t dim,
              const std::vector<std::vector<size_t>>& truth) {
  const size_t q = truth.size();
  std::vector<double> times(q);
  size_t found = 0;
  for (size_t i = 0; i < q; ++i) {
    const auto start = Clock::now();
    const std::vector<SearchHit> hits = index.Search(&queries[i * dim], 10);
    times[i] = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    const std::unordered_set<size_t> expected(truth[i].begin(), truth[i].end());
    for (const SearchHit& hit : hits) found += expected.count(hit.row);
  }
  Stats stats;
  stats.recall = double(found) / double(q * 10);
  for (double t : times) stats.mean_ms += t / q;
  std::sort(times.begin(), times.end());
  stats.p50_ms = times[q / 2];
  stats.p99_ms = times[std::min(q - 1, q * 99 / 100)];
  return stats;
}

double Seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void PrintRow(const char* index, const std::string& setting, const Stats& s) {
  std::printf("| %-5s | %-14s | %6.4f | %8.3f | %8.3f | %8.3f |\n", index, setting.c_str(), s.recall, s.p50_ms,
              s.p99_ms, s.mean_ms);
}

void BenchSearch(const Args& args) {
  std::mt19937 rng(42);
  const std::vector<float> centres = Vectors(args.clusters, args.dim, true, rng, {});
  const std::vector<float> data = Vectors(args.n, args.dim, args.uniform, rng, centres, args.noise);
  const std::vector<float> queries = Vectors(args.queries, args.dim, args.uniform, rng, centres, args.noise);
  char distribution[96];
  std::snprintf(distribution, sizeof distribution, "Gaussian mixture, %zu clusters, noise %.3f per dimension",
                args.clusters, args.noise);
  std::printf("## search: %zu vectors, dim %zu, %s, %zu single queries, k=10\n\n", args.n, args.dim,
              args.uniform ? "uniform on the sphere" : distribution, args.queries);

  IndexOptions flat_options;
  VectorIndex flat(args.dim, flat_options);
  auto start = Clock::now();
  flat.Update(data.data(), args.n, 0);
  std::printf("build: flat %.2fs", Seconds(start));
  std::vector<std::vector<size_t>> truth(args.queries);
  for (size_t i = 0; i < args.queries; ++i) {
    for (const SearchHit& hit : flat.Search(&queries[i * args.dim], 10)) truth[i].push_back(hit.row);
  }

  IndexOptions ivf_options;
  ivf_options.type = IndexType::kIvf;
  VectorIndex ivf(args.dim, ivf_options);
  start = Clock::now();
  ivf.Update(data.data(), args.n, 0);
  std::printf(", ivf %.2fs (nlist %zu)", Seconds(start), ivf.nlist());

  IndexOptions hnsw_options;
  hnsw_options.type = IndexType::kHnsw;
  VectorIndex hnsw(args.dim, hnsw_options);
  start = Clock::now();
  if (!args.skip_hnsw) hnsw.Update(data.data(), args.n, 0);
  std::printf(", hnsw %.2fs (M %zu, efConstruction %zu)\n\n", Seconds(start), hnsw_options.hnsw_m,
              hnsw_options.ef_construction);

  std::printf("| index | setting        | recall@10 | p50 ms | p99 ms | mean ms |\n");
  std::printf("|-------|----------------|--------:|---------:|---------:|---------:|\n");
  PrintRow("flat", "exact", Measure(flat, queries, args.dim, truth));
  for (size_t nprobe : {0, 4, 8, 16, 32, 64, 128}) {
    ivf.SetSearchOptions(nprobe, 0);
    const std::string label =
        nprobe ? "nprobe " + std::to_string(nprobe) : "auto (" + std::to_string(ivf.effective_nprobe()) + ")";
    PrintRow("ivf", label, Measure(ivf, queries, args.dim, truth));
  }
  for (size_t ef : {0, 16, 32, 64, 128, 256}) {
    if (args.skip_hnsw) break;
    hnsw.SetSearchOptions(0, ef);
    const std::string label =
        ef ? "efSearch " + std::to_string(ef) : "auto (" + std::to_string(hnsw.effective_ef_search(10)) + ")";
    PrintRow("hnsw", label, Measure(hnsw, queries, args.dim, truth));
  }
  std::printf("\n");
}

// Markdown-ish prose from a fixed vocabulary: realistic word lengths and
// paragraphs, deterministic.
std::string SyntheticDocument(std::mt19937& rng, size_t words) {
  static const char* vocabulary[] = {
      "router",        "expert",     "gate",   "query",     "passage",   "index",     "chunk",   "embedding",
      "the",           "of",         "and",    "a",         "to",        "retrieval", "latency", "throughput",
      "configuration", "deployment", "worker", "broker",    "heartbeat", "deadline",  "model",   "checkpoint",
      "tokenizer",     "inference",  "kernel", "selective", "scan",      "state",     "is",      "with"};
  std::string text = "# Document\n\n";
  for (size_t i = 0; i < words; ++i) {
    text += vocabulary[rng() % (sizeof vocabulary / sizeof *vocabulary)];
    text += (i % 97 == 96) ? ".\n\n" : (i % 13 == 12) ? ". " : " ";
  }
  return text;
}

void BenchIngest(const Args& args) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("bench_retrieval_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::mt19937 rng(7);
  size_t bytes = 0;
  std::vector<std::string> texts;
  for (size_t i = 0; i < args.ingest_files; ++i) {
    const std::string text = SyntheticDocument(rng, 300 + rng() % 1200);
    bytes += text.size();
    std::filesystem::create_directories(root / "docs" / std::to_string(i % 50));
    std::ofstream(root / "docs" / std::to_string(i % 50) / ("doc" + std::to_string(i) + ".md")) << text;
    if (texts.size() < 20000) texts.push_back(text.substr(0, 1000));
  }
  const HashingEmbedder embedder;
  IngestOptions options;
  options.domain = "bench";
  const auto start = Clock::now();
  const IngestReport report = Ingest((root / "index").string(), embedder, {(root / "docs").string()}, options);
  const double seconds = Seconds(start);

  std::vector<float> out(texts.size() * embedder.dim());
  const auto embed_start = Clock::now();
  embedder.EmbedDocuments(texts, out.data());
  const double embed_seconds = Seconds(embed_start);
  std::printf(
      "## ingest: %zu Markdown files, %.1f MB, chunks of 1000 chars with 200 overlap, hashing embedder (dim 384), flat "
      "index\n\n",
      args.ingest_files, bytes / 1e6);
  std::printf("| stage | chunks | seconds | chunks/s |\n|---|--:|--:|--:|\n");
  std::printf("| ingest end to end (read, chunk, embed, index, commit) | %zu | %.2f | %.0f |\n", report.total_chunks,
              seconds, report.total_chunks / seconds);
  std::printf("| hashing embedder alone (1000-char texts) | %zu | %.2f | %.0f |\n\n", texts.size(), embed_seconds,
              texts.size() / embed_seconds);
  std::filesystem::remove_all(root);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = Parse(argc, argv);
    BenchSearch(args);
    if (args.ingest_files > 0) BenchIngest(args);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_retrieval: %s\n", e.what());
    return 1;
  }
}
