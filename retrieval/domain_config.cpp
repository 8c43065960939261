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
  from_file =
      !expert.file.empty() && expert.file != config::kEmbeddedDefaultName && fs::is_regular_file(expert.file, error);
  if (from_file) return fs::absolute(expert.file).parent_path();
  return fs::current_path();
}

fs::path Resolve(const fs::path& base, const std::string& path) {
  const fs::path p(path);
  return p.is_absolute() ? p : (base / p).lexically_normal();
}

// config/'s enums name the same values in the same order as retrieval's
// (config/ sits below retrieval/ and cannot use them).
template <typename To, typename From>
constexpr To Same(From value) {
  return static_cast<To>(static_cast<int>(value));
}
static_assert(Same<ChunkUnit>(config::ChunkUnit::kChars) == ChunkUnit::kCharacters &&
              Same<ChunkUnit>(config::ChunkUnit::kTokens) == ChunkUnit::kTokens);
static_assert(Same<IndexType>(config::IndexType::kFlat) == IndexType::kFlat &&
              Same<IndexType>(config::IndexType::kIvf) == IndexType::kIvf &&
              Same<IndexType>(config::IndexType::kHnsw) == IndexType::kHnsw);

}  // namespace

DomainSetup SetupFromConfig(const config::ExpertConfig& expert) {
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
  // config/ checked every value (sizes, overlap < size, the index directory).
  setup.ingest.domain = expert.domain.empty() ? expert.name : expert.domain;
  setup.ingest.chunking.size = static_cast<size_t>(expert.chunk_size);
  setup.ingest.chunking.overlap = static_cast<size_t>(expert.chunk_overlap);
  setup.ingest.chunking.unit = Same<ChunkUnit>(expert.chunk_unit);
  setup.ingest.index.type = Same<IndexType>(expert.index_type);
  setup.ingest.include = expert.include;
  setup.ingest.exclude = expert.exclude;
  setup.ingest.base_dir = base.string();
  setup.search.nprobe = static_cast<size_t>(expert.nprobe);
  setup.search.ef_search = static_cast<size_t>(expert.ef_search);
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
