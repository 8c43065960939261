#include "retrieval/domain_config.h"

#include <filesystem>
#include <stdexcept>

namespace thalamus::retrieval {
namespace {

namespace fs = std::filesystem;

// The directory relative paths of this block start from, and whether the
// block came from a real file (not the embedded default).
fs::path BaseDirectory(const config::ExpertConfig& expert, bool& from_file) {
  std::error_code error;
  from_file = !expert.file.empty() && expert.file != config::kEmbeddedDefaultName &&
              fs::is_regular_file(expert.file, error);
  if (from_file) return fs::absolute(expert.file).parent_path();
  return fs::current_path();
}

fs::path Resolve(const fs::path& base, const std::string& path) {
  const fs::path p(path);
  return p.is_absolute() ? p : (base / p).lexically_normal();
}

std::runtime_error Bad(const config::ExpertConfig& expert, const std::string& what) {
  return std::runtime_error("expert '" + expert.name + "': " + what);
}

size_t Positive(const config::ExpertConfig& expert, const char* key, int value, bool allow_zero) {
  if (value < 0 || (!allow_zero && value == 0)) {
    throw Bad(expert, std::string(key) + " must be " + (allow_zero ? "zero or positive" : "positive"));
  }
  return static_cast<size_t>(value);
}

}  // namespace

DomainSetup SetupFromConfig(const config::ExpertConfig& expert) {
  if (expert.index.empty()) throw Bad(expert, "a rag expert needs `index` (its index directory)");
  bool from_file = false;
  const fs::path base = BaseDirectory(expert, from_file);
  DomainSetup setup;
  setup.index_dir = Resolve(base, expert.index).string();
  const std::string& spec = expert.embedder;
  if (spec.empty() || spec.rfind("hashing", 0) == 0) {
    setup.embedder = spec;
  } else if (spec.rfind("bert:", 0) == 0) {
    setup.embedder = "bert:" + Resolve(base, spec.substr(5)).string();
  } else {
    setup.embedder = Resolve(base, spec).string();
  }
  try {
    setup.ingest.domain = expert.domain.empty() ? expert.name : expert.domain;
    setup.ingest.chunking.size = Positive(expert, "chunk_size", expert.chunk_size, false);
    setup.ingest.chunking.overlap = Positive(expert, "chunk_overlap", expert.chunk_overlap, true);
    setup.ingest.chunking.unit = ParseChunkUnit(expert.chunk_unit);
    setup.ingest.chunking.Validate();
    setup.ingest.index.type = ParseIndexType(expert.index_type);
  } catch (const std::invalid_argument& e) {
    throw Bad(expert, e.what());
  }
  setup.ingest.include = expert.include;
  setup.ingest.exclude = expert.exclude;
  setup.ingest.base_dir = base.string();
  setup.search.nprobe = Positive(expert, "nprobe", expert.nprobe, true);
  setup.search.ef_search = Positive(expert, "ef_search", expert.ef_search, true);
  for (const std::string& source : expert.sources) {
    fs::path resolved = Resolve(base, source);
    std::error_code error;
#ifdef THALAMUS_SOURCE_DIR
    // The embedded default's sources are this repository's files.
    if (!from_file && fs::path(source).is_relative()) {
      const fs::path in_tree = Resolve(THALAMUS_SOURCE_DIR, source);
      if (fs::exists(in_tree, error)) {
        resolved = in_tree;
        setup.ingest.base_dir = THALAMUS_SOURCE_DIR;  // cite paths as in the repository
      }
    }
#endif
    if (fs::exists(resolved, error)) {
      setup.sources.push_back(resolved.string());
    } else {
      setup.missing.push_back(resolved.string());
    }
  }
  return setup;
}

}  // namespace thalamus::retrieval
