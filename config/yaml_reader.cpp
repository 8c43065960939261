#include "config/yaml_reader.h"

#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>

#include "config/config.h"

namespace thalamus::config {
namespace {

std::string Where(const std::string& file, const YAML::Mark& mark) {
  std::ostringstream out;
  out << file;
  if (!mark.is_null()) out << ":" << mark.line + 1 << ":" << mark.column + 1;
  return out.str();
}

std::string Scalar(const YAML::Node& node) {
  return node.IsScalar() ? node.Scalar() : std::string("<") + (node.IsMap() ? "map" : "list") + ">";
}

}  // namespace

MapReader::MapReader(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  if (!node_.IsMap()) {
    throw ConfigError(Where(file_, node_.Mark()) + ": " + (path_.empty() ? "the top level" : path_) +
                      ": must be a map of keys");
  }
}

int MapReader::line() const { return node_.Mark().is_null() ? 0 : node_.Mark().line + 1; }

std::string MapReader::KeyPath(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

void MapReader::FailAt(const YAML::Mark& mark, const std::string& key, const std::string& message) const {
  throw ConfigError(Where(file_, mark) + ": " + KeyPath(key) + ": " + message);
}

void MapReader::Fail(const std::string& key, const std::string& message) const {
  auto value = Get(key);
  FailAt(value ? value->Mark() : node_.Mark(), key, message);
}

std::optional<YAML::Node> MapReader::Get(const std::string& key) const {
  read_.insert(key);
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) {
      if (it->second.IsNull()) return std::nullopt;
      return it->second;
    }
  }
  return std::nullopt;
}

std::string MapReader::String(const std::string& key, const std::string& fallback) const {
  auto value = Get(key);
  if (!value) return fallback;
  if (!value->IsScalar()) FailAt(value->Mark(), key, "must be a string, got a " + Scalar(*value));
  return value->Scalar();
}

std::string MapReader::RequiredString(const std::string& key) const {
  auto value = Get(key);
  if (!value) FailAt(node_.Mark(), key, "is required");
  std::string text = String(key, "");
  if (text.empty()) FailAt(value->Mark(), key, "must not be empty");
  return text;
}

std::string MapReader::Resolve(const std::string& text) const {
  std::filesystem::path path(text);
  std::filesystem::path config_dir = std::filesystem::path(file_).parent_path();
  // The embedded default has no folder of its own: its paths are relative to the working directory.
  const bool embedded = file_ == kEmbeddedDefaultName;
  if (path.is_relative() && !embedded && !config_dir.empty() && std::filesystem::exists(file_))
    path = config_dir / path;
  return path.lexically_normal().string();
}

std::string MapReader::Path(const std::string& key, const std::string& fallback) const {
  std::string text = String(key, fallback);
  if (text.empty() || text == fallback) return text;
  return Resolve(text);
}

std::vector<std::string> MapReader::StringList(const std::string& key) const {
  auto value = Get(key);
  if (!value) return {};
  if (value->IsScalar()) return {value->Scalar()};
  if (!value->IsSequence()) FailAt(value->Mark(), key, "must be a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < value->size(); ++i) {
    YAML::Node item = (*value)[i];
    if (!item.IsScalar() || item.Scalar().empty()) {
      FailAt(item.Mark(), key + "[" + std::to_string(i) + "]", "must be a non-empty string");
    }
    out.push_back(item.Scalar());
  }
  return out;
}

std::vector<std::string> MapReader::PathList(const std::string& key) const {
  std::vector<std::string> paths = StringList(key);
  for (std::string& path : paths) path = Resolve(path);
  return paths;
}

std::string MapReader::Endpoint(const std::string& key, const std::string& fallback) const {
  std::string text = String(key, fallback);
  static const std::regex kEndpoint(R"((tcp://[^:/\s]+:(\*|[0-9]{1,5}))|(ipc://\S+)|(inproc://\S+))");
  if (!std::regex_match(text, kEndpoint)) {
    Fail(key,
         "must be a ZeroMQ endpoint like tcp://127.0.0.1:5556, tcp://0.0.0.0:* or ipc:///tmp/x, got '" + text + "'");
  }
  return text;
}

bool MapReader::Has(const std::string& key) const {
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return true;
  }
  return false;
}

int MapReader::Int(const std::string& key, int fallback, int min, int max) const {
  auto value = Get(key);
  if (!value) return fallback;
  long long parsed = 0;
  if (!value->IsScalar() || !YAML::convert<long long>::decode(*value, parsed)) {
    FailAt(value->Mark(), key, "must be an integer, got '" + Scalar(*value) + "'");
  }
  if (parsed < min || parsed > max) {
    FailAt(
        value->Mark(), key,
        "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + std::to_string(parsed));
  }
  return static_cast<int>(parsed);
}

double MapReader::Double(const std::string& key, double fallback, double min, double max) const {
  auto value = Get(key);
  if (!value) return fallback;
  double parsed = 0;
  if (!value->IsScalar() || !YAML::convert<double>::decode(*value, parsed) || !std::isfinite(parsed)) {
    FailAt(value->Mark(), key, "must be a number, got '" + Scalar(*value) + "'");
  }
  if (parsed < min || parsed > max) {
    std::ostringstream message;
    message << "must be between " << min << " and " << max << ", got " << parsed;
    FailAt(value->Mark(), key, message.str());
  }
  return parsed;
}

bool MapReader::Bool(const std::string& key, bool fallback) const {
  auto value = Get(key);
  if (!value) return fallback;
  bool parsed = false;
  if (!value->IsScalar() || !YAML::convert<bool>::decode(*value, parsed)) {
    FailAt(value->Mark(), key, "must be true or false, got '" + Scalar(*value) + "'");
  }
  return parsed;
}

std::optional<MapReader> MapReader::Child(const std::string& key) const {
  auto value = Get(key);
  if (!value) return std::nullopt;
  if (!value->IsMap()) FailAt(value->Mark(), key, "must be a map of keys");
  return MapReader(*value, file_, KeyPath(key));
}

std::vector<MapReader> MapReader::List(const std::string& key) const {
  std::vector<MapReader> out;
  auto value = Get(key);
  if (!value) return out;
  if (!value->IsSequence()) FailAt(value->Mark(), key, "must be a list");
  for (size_t i = 0; i < value->size(); ++i) {
    YAML::Node item = (*value)[i];
    std::string item_path = KeyPath(key) + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) throw ConfigError(Where(file_, item.Mark()) + ": " + item_path + ": must be a map of keys");
    out.emplace_back(item, file_, item_path);
  }
  return out;
}

void MapReader::CheckName(const std::string& key, const std::string& value) const {
  static const std::regex kName(R"([A-Za-z0-9][A-Za-z0-9_.\-]{0,63})");
  if (!std::regex_match(value, kName)) {
    Fail(key, "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit, got '" + value + "'");
  }
}

void MapReader::RejectUnknown() const { RejectUnknown(read_); }

void MapReader::RejectUnknown(const std::set<std::string>& allowed) const {
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "<non-scalar key>";
    if (!allowed.count(key)) FailAt(it->first.Mark(), key, "unknown key");
  }
}

}  // namespace thalamus::config
