// MapReader: typed access to one YAML map that remembers which keys were read,
// so unknown keys can be rejected, and whose errors name file, line and key.
// Private to config/.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace thalamus::config {

class MapReader {
 public:
  // `path` is the dotted key path of this map ("" for the top level,
  // "experts[2]" for an expert block). Throws ConfigError if `node` is not a map.
  MapReader(YAML::Node node, std::string file, std::string path);

  const std::string& file() const { return file_; }
  int line() const;  // 1-based line of this map

  std::string String(const std::string& key, const std::string& fallback) const;
  std::string RequiredString(const std::string& key) const;
  // A filesystem path; relative paths are resolved against the config file's folder.
  std::string Path(const std::string& key, const std::string& fallback) const;
  // A list of strings (a single string counts as a list of one); empty if absent.
  std::vector<std::string> StringList(const std::string& key) const;
  // A list of paths, each resolved like Path().
  std::vector<std::string> PathList(const std::string& key) const;
  // A ZeroMQ endpoint: tcp://host:port, tcp://host:*, ipc://path or inproc://name.
  std::string Endpoint(const std::string& key, const std::string& fallback) const;
  int Int(const std::string& key, int fallback, int min, int max) const;
  double Double(const std::string& key, double fallback, double min, double max) const;
  bool Bool(const std::string& key, bool fallback) const;
  // Whether the map has `key` (it does not count as read).
  bool Has(const std::string& key) const;
  // A nested map, if present.
  std::optional<MapReader> Child(const std::string& key) const;
  // A list of maps; empty if absent.
  std::vector<MapReader> List(const std::string& key) const;
  // Service names go into URLs, metric labels and ZeroMQ frames: keep them plain.
  void CheckName(const std::string& key, const std::string& value) const;

  // Throws ConfigError for the first key not read so far (or, with `allowed`,
  // not in that set).
  void RejectUnknown() const;
  void RejectUnknown(const std::set<std::string>& allowed) const;
  [[noreturn]] void Fail(const std::string& key, const std::string& message) const;

 private:
  std::optional<YAML::Node> Get(const std::string& key) const;
  std::string KeyPath(const std::string& key) const;
  [[noreturn]] void FailAt(const YAML::Mark& mark, const std::string& key, const std::string& message) const;
  std::string Resolve(const std::string& path) const;

  YAML::Node node_;
  std::string file_;
  std::string path_;
  mutable std::set<std::string> read_;
};

}  // namespace thalamus::config
