#include "retrieval/source_files.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace thalamus::retrieval::source_files {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool Matches(const std::vector<std::string>& patterns, const std::string& relative, const std::string& name) {
  for (const std::string& pattern : patterns) {
    const std::string& subject = pattern.find('/') != std::string::npos ? relative : name;
    if (::fnmatch(pattern.c_str(), subject.c_str(), 0) == 0) return true;
  }
  return false;
}

// Relative to the base directory when inside it, else relative to the folder
// holding the path that was given ("../docs" cites "docs/a.md").
std::string Display(const fs::path& file, const fs::path& base, const fs::path& given) {
  for (const fs::path& from : {base, given.parent_path()}) {
    const fs::path relative = file.lexically_relative(from);
    if (!relative.empty() && *relative.begin() != "..") return relative.generic_string();
  }
  return file.string();
}

bool IsJsonl(const std::string& key) {
  std::string extension = fs::path(key).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return extension == ".jsonl" || extension == ".ndjson";
}

void Walk(const fs::path& root, const std::vector<std::string>& include, const std::vector<std::string>& exclude,
          const fs::path& base, std::vector<FoundFile>& found) {
  std::error_code error;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, error);
  if (error) throw std::runtime_error("cannot read directory " + root.string() + ": " + error.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) throw std::runtime_error("cannot read directory " + root.string() + ": " + error.message());
    const std::string name = it->path().filename().string();
    if (it->is_directory(error)) {
      if (IsSkippedDirectory(name) || it->is_symlink(error)) it.disable_recursion_pending();
      continue;
    }
    if (name.empty() || name[0] == '.' || !it->is_regular_file(error)) continue;
    const std::string relative = it->path().lexically_relative(root).generic_string();
    if (!include.empty() && !Matches(include, relative, name)) continue;
    if (Matches(exclude, relative, name)) continue;
    const fs::path canonical = fs::weakly_canonical(it->path(), error);
    if (error) continue;
    found.push_back({canonical.string(), Display(canonical, base, root)});
  }
}

std::string SourceOf(const json& line, const FoundFile& file, size_t line_number) {
  if (!line.contains("id") || line["id"].is_null()) return file.display + ":" + std::to_string(line_number);
  const json& id = line["id"];
  if (id.is_string()) return id.get<std::string>();
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  throw std::runtime_error("\"id\" must be a string or an integer");
}

}  // namespace

bool IsSkippedDirectory(std::string_view name) {
  if (name.empty() || name[0] == '.') return true;  // .git, .venv-*, .cache, ...
  if (name == "build" || name.rfind("build-", 0) == 0 || name.rfind("build_", 0) == 0) return true;
  if (name.rfind("cmake-build-", 0) == 0) return true;
  return name == "node_modules" || name == "__pycache__";
}

FoundFiles Find(const std::vector<std::string>& paths, const std::vector<std::string>& include,
                const std::vector<std::string>& exclude, const std::string& base_dir) {
  const fs::path base = fs::weakly_canonical(base_dir.empty() ? fs::current_path() : fs::path(base_dir));
  FoundFiles result;
  for (const std::string& path : paths) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) throw std::runtime_error("no such file or directory: " + path);
    const fs::path canonical = fs::canonical(path, error);
    if (error) throw std::runtime_error("cannot resolve " + path + ": " + error.message());
    if (fs::is_directory(status)) {
      Walk(canonical, include, exclude, base, result.files);
      result.directories.push_back(canonical.string());
    } else if (fs::is_regular_file(status)) {
      result.files.push_back({canonical.string(), Display(canonical, base, canonical)});
    } else {
      throw std::runtime_error("not a regular file or directory: " + path);
    }
  }
  std::sort(result.files.begin(), result.files.end(),
            [](const FoundFile& a, const FoundFile& b) { return a.key < b.key; });
  result.files.erase(std::unique(result.files.begin(), result.files.end(),
                                 [](const FoundFile& a, const FoundFile& b) { return a.key == b.key; }),
                     result.files.end());
  return result;
}

std::vector<Document> ParseDocuments(const FoundFile& file, std::string content) {
  if (!IsJsonl(file.key)) return {{file.display, std::move(content), ""}};
  std::vector<Document> documents;
  size_t line_number = 0;
  for (size_t begin = 0; begin < content.size();) {
    size_t end = content.find('\n', begin);
    if (end == std::string::npos) end = content.size();
    ++line_number;
    const std::string_view text = std::string_view(content).substr(begin, end - begin);
    begin = end + 1;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    try {
      const json line = json::parse(text);
      if (!line.is_object()) throw std::runtime_error("expected a JSON object");
      if (!line.contains("text") || !line["text"].is_string())
        throw std::runtime_error("missing string field \"text\"");
      Document document{SourceOf(line, file, line_number), line["text"].get<std::string>(), ""};
      if (line.contains("metadata") && !line["metadata"].is_null()) {
        if (!line["metadata"].is_object()) throw std::runtime_error("\"metadata\" must be an object");
        document.metadata = line["metadata"].dump(-1, ' ', false, json::error_handler_t::replace);
      }
      documents.push_back(std::move(document));
    } catch (const std::exception& e) {
      throw std::runtime_error(file.display + ":" + std::to_string(line_number) + ": " + e.what());
    }
  }
  return documents;
}

std::string ContentHash(std::string_view content, std::string_view chunking) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : content) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(hex) + "-" + std::to_string(content.size()) + "-" + std::string(chunking);
}

}  // namespace thalamus::retrieval::source_files
