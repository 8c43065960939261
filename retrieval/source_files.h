// Finding and reading the files `thalamus ingest` is given; private to retrieval/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace thalamus::retrieval::source_files {

struct FoundFile {
  std::string key;      // canonical absolute path: identifies the file across ingests
  std::string display;  // what citations show: relative to the base directory when inside it, else
                        // to the folder of the path given
};

struct FoundFiles {
  std::vector<FoundFile> files;          // sorted by key, no duplicates
  std::vector<std::string> directories;  // canonical paths of the directories walked (for prune)
};

// Expands files and directories. Throws std::runtime_error for a path that
// does not exist or a bad glob pattern.
FoundFiles Find(const std::vector<std::string>& paths, const std::vector<std::string>& include,
                const std::vector<std::string>& exclude, const std::string& base_dir);

// A directory the walk never enters: hidden, build output, dependencies.
bool IsSkippedDirectory(std::string_view name);

struct Document {
  std::string source;  // citation: the file's display path, or a JSONL record's id
  std::string text;
  std::string metadata;  // JSON object text or empty
};

// One document for a text file; one per line for *.jsonl. Throws
// std::runtime_error "<display>:<line>: ..." for a malformed JSONL line.
std::vector<Document> ParseDocuments(const FoundFile& file, std::string content);

// Identifies contents plus chunking: a changed hash means re-chunking.
std::string ContentHash(std::string_view content, std::string_view chunking);

}  // namespace thalamus::retrieval::source_files
