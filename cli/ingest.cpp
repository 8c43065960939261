// `thalamus ingest`: fills a retrieval domain's index ahead of time.
//
//   thalamus ingest --domain docs --index data/index/docs README.md docs/
//   thalamus ingest --config thalamus.yaml --expert docs        (the block's sources and options)
//   thalamus ingest --index data/index/docs --search "how is the gate trained?"
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include <boost/program_options.hpp>

#include "cli/commands.h"
#include "cli/parse_options.h"
#include "config/config.h"
#include "retrieval/domain_config.h"
#include "retrieval/retrieval.h"

namespace thalamus::cli {
namespace {

namespace po = boost::program_options;

po::options_description Options() {
  po::options_description o(
      "thalamus ingest [options] FILES_OR_DIRS...: chunk, embed and index files into a domain\n"
      "(text, Markdown, source code; *.jsonl lines {\"text\",\"id\",\"metadata\"}). Re-ingesting a changed\n"
      "file replaces its chunks; unchanged files are skipped. With --config/--expert the rag expert's\n"
      "block supplies every option and its `sources`; options given here override it");
  o.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                              "config file with the rag expert (with --expert)")(
      "expert", po::value<std::string>(), "name of a kind: rag expert in --config")(
      "domain", po::value<std::string>(), "domain name (required without --config)")(
      "index", po::value<std::string>(), "index directory (required without --config)")(
      "embedder", po::value<std::string>(),
      "hashing (default), hashing:DIM, or a sentence-transformers checkpoint DIR")(
      "index-type", po::value<std::string>(), "flat (default), ivf or hnsw")("chunk-size", po::value<size_t>(),
                                                                             "units per chunk (default 1000)")(
      "chunk-overlap", po::value<size_t>(), "units shared by neighbouring chunks (default 200)")(
      "chunk-unit", po::value<std::string>(), "chars (default) or tokens")(
      "include", po::value<std::vector<std::string>>()->composing(),
      "glob of files to take from directories (repeatable)")(
      "exclude", po::value<std::vector<std::string>>()->composing(), "glob of files to leave out (repeatable)")(
      "base", po::value<std::string>(), "cite sources relative to this directory (default: current)")(
      "prune", "drop indexed files under the given directories that no longer exist")(
      "batch", po::value<size_t>()->default_value(0), "chunks per embedding batch (0: the embedder's choice)")(
      "threads", po::value<int>()->default_value(0), "encoder threads (0: default)")(
      "search", po::value<std::string>(),
      "after ingesting (or instead, without files), print the best passages for this query")(
      "top-k", po::value<size_t>()->default_value(5), "passages --search prints")("quiet,q", "no progress output")(
      "paths", po::value<std::vector<std::string>>()->composing(), "files or directories");
  return o;
}

// Progress on stderr: a line rewritten in place on a terminal, a line every
// few seconds otherwise (logs).
std::function<void(const retrieval::IngestProgress&)> ProgressPrinter(const std::string& domain) {
  const bool tty = ::isatty(STDERR_FILENO);
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  return [tty, last, domain](const retrieval::IngestProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!p.finished && now - *last < std::chrono::milliseconds(tty ? 100 : 3000)) return;
    *last = now;
    const double rate = p.seconds > 0 ? p.chunks_embedded / p.seconds : 0;
    std::fprintf(stderr, "%s[ingest %s] files %zu/%zu  chunks %zu  %.0f chunks/s  %.1fs%s", tty ? "\r" : "",
                 domain.c_str(), p.files_done, p.files_total, p.chunks_embedded, rate, p.seconds,
                 tty && !p.finished ? "" : "\n");
  };
}

void PrintPassages(const retrieval::Retriever& retriever, const std::string& query, size_t k) {
  const std::vector<retrieval::Passage> passages = retriever.Search(query, k);
  if (passages.empty()) std::printf("no passages (the index is empty)\n");
  for (size_t i = 0; i < passages.size(); ++i) {
    const retrieval::Passage& p = passages[i];
    std::printf("[%zu] %.3f  %s:%llu-%llu  (chunk %llu)\n", i + 1, p.score, p.source.c_str(),
                static_cast<unsigned long long>(p.start), static_cast<unsigned long long>(p.end),
                static_cast<unsigned long long>(p.chunk_id));
    std::string excerpt = p.text.substr(0, 300);
    for (char& c : excerpt) c = c == '\n' ? ' ' : c;
    std::printf("    %s%s\n", excerpt.c_str(), p.text.size() > 300 ? "..." : "");
  }
}

// The setup from --config/--expert, or an empty one.
retrieval::DomainSetup BaseSetup(const po::variables_map& vars) {
  if (!vars.count("config") && !vars.count("expert")) return {};
  if (!vars.count("config") || !vars.count("expert")) throw std::runtime_error("--config and --expert go together");
  const config::Config cfg = config::LoadFile(vars["config"].as<std::string>());
  const config::ExpertConfig* expert = cfg.FindExpert(vars["expert"].as<std::string>());
  if (expert == nullptr)
    throw std::runtime_error(cfg.file + ": no expert named '" + vars["expert"].as<std::string>() + "'");
  if (expert->kind != config::ExpertKind::kRag) {
    throw std::runtime_error("expert '" + expert->name + "' is kind " + config::Name(expert->kind) + ", not rag");
  }
  retrieval::DomainSetup setup = retrieval::SetupFromConfig(*expert);
  for (const std::string& missing : setup.missing)
    std::fprintf(stderr, "thalamus ingest: warning: source %s does not exist\n", missing.c_str());
  return setup;
}

void ApplyOverrides(const po::variables_map& vars, retrieval::DomainSetup& setup) {
  if (vars.count("domain")) setup.ingest.domain = vars["domain"].as<std::string>();
  if (vars.count("index")) setup.index_dir = vars["index"].as<std::string>();
  if (vars.count("embedder")) setup.embedder = vars["embedder"].as<std::string>();
  if (vars.count("index-type"))
    setup.ingest.index.type = retrieval::ParseIndexType(vars["index-type"].as<std::string>());
  if (vars.count("chunk-size")) setup.ingest.chunking.size = vars["chunk-size"].as<size_t>();
  if (vars.count("chunk-overlap")) setup.ingest.chunking.overlap = vars["chunk-overlap"].as<size_t>();
  if (vars.count("chunk-unit"))
    setup.ingest.chunking.unit = retrieval::ParseChunkUnit(vars["chunk-unit"].as<std::string>());
  if (vars.count("include")) setup.ingest.include = vars["include"].as<std::vector<std::string>>();
  if (vars.count("exclude")) setup.ingest.exclude = vars["exclude"].as<std::vector<std::string>>();
  if (vars.count("base")) setup.ingest.base_dir = vars["base"].as<std::string>();
  if (vars.count("paths")) setup.sources = vars["paths"].as<std::vector<std::string>>();
  setup.ingest.prune = vars.count("prune") > 0;
  setup.ingest.batch_size = vars["batch"].as<size_t>();
}

int Run(const po::variables_map& vars) {
  retrieval::DomainSetup setup = BaseSetup(vars);
  ApplyOverrides(vars, setup);
  if (setup.index_dir.empty()) throw std::invalid_argument("--index is required (or --config with --expert)");
  const bool searching = vars.count("search") > 0;
  if (setup.sources.empty() && !searching) throw std::invalid_argument("no files or directories to ingest");
  std::shared_ptr<const retrieval::Embedder> embedder =
      retrieval::MakeEmbedder(setup.embedder, "", vars["threads"].as<int>());
  int status = 0;
  if (!setup.sources.empty()) {
    if (setup.ingest.domain.empty()) throw std::invalid_argument("--domain is required (or --config with --expert)");
    if (!vars.count("quiet")) setup.ingest.progress = ProgressPrinter(setup.ingest.domain);
    const retrieval::IngestReport r = retrieval::Ingest(setup.index_dir, *embedder, setup.sources, setup.ingest);
    for (const std::string& problem : r.problems) std::fprintf(stderr, "thalamus ingest: %s\n", problem.c_str());
    std::printf(
        "%s: %zu added, %zu updated, %zu unchanged, %zu removed, %zu skipped, %zu failed files; "
        "+%zu/-%zu chunks, %zu in the index (%.1fs)\n",
        setup.index_dir.c_str(), r.files_added, r.files_updated, r.files_unchanged, r.files_removed, r.files_skipped,
        r.files_failed, r.chunks_added, r.chunks_removed, r.total_chunks, r.seconds);
    status = r.files_failed > 0 ? 1 : 0;
  }
  if (searching) {
    const retrieval::Retriever retriever(setup.index_dir, embedder, setup.search);
    PrintPassages(retriever, vars["search"].as<std::string>(), vars["top-k"].as<size_t>());
  }
  return status;
}

}  // namespace

int RunIngest(int argc, char** argv) {
  const po::options_description options = Options();
  po::positional_options_description positional;
  positional.add("paths", -1);
  po::variables_map vars;
  if (auto exit_code = ParseOptions(argc, argv, "thalamus ingest", options, vars, {}, &positional)) return *exit_code;
  try {
    return Run(vars);
  } catch (const std::invalid_argument& e) {
    std::cerr << "thalamus ingest: " << e.what() << "\n(see thalamus ingest --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "thalamus ingest: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace thalamus::cli
