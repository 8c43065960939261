// retrieval/domain_config: what a `kind: rag` expert block means for
// retrieval: its index directory, embedder, index and chunking options and
// the sources to build it from, with relative paths resolved.
//
// Relative paths are resolved against the directory of the config file the
// block came from. For the embedded default config (no file) they resolve
// against the current directory, except sources that exist in the source
// tree this binary was built from: the shipped domains are this repository's
// docs and code, wherever the router is started.
// The block was validated by config/; SetupFromConfig does not throw for
// its values (only for filesystem errors).
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "retrieval/ingest.h"
#include "retrieval/vector_index.h"

namespace thalamus::retrieval {

struct DomainSetup {
  std::string index_dir;
  std::string embedder;              // spec for MakeEmbedder, relative paths resolved
  std::vector<std::string> sources;  // resolved; those that exist
  std::vector<std::string> missing;  // configured sources that exist nowhere
  IngestOptions ingest;              // domain, chunking, index build options, include/exclude, base_dir
  IndexOptions search;               // nprobe, ef_search
};

DomainSetup SetupFromConfig(const config::ExpertConfig& expert);

}  // namespace thalamus::retrieval
