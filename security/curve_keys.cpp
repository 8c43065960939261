#include "security/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace thalamus::security {
namespace {

constexpr size_t kZ85KeyChars = 40;

bool IsZ85Key(const std::string& key) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  return key.size() == kZ85KeyChars &&
         std::all_of(key.begin(), key.end(), [](char c) { return kAlphabet.find(c) != std::string_view::npos; });
}

// The `name = "value"` lines of a key file.
}  // namespace

std::string ReadKeyFileText(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw KeyError(path + ": cannot read the " + what);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::map<std::string, std::string> ParseKeyFields(const std::string& text, const std::string& path) {
  std::istringstream in(text);
  std::map<std::string, std::string> fields;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#') continue;
    const size_t equals = line.find('=');
    const size_t open = line.find('"', equals == std::string::npos ? 0 : equals);
    const size_t close = open == std::string::npos ? open : line.find('"', open + 1);
    if (equals == std::string::npos || close == std::string::npos) {
      throw KeyError(path + ":" + std::to_string(number) + ": expected name = \"Z85 key\"");
    }
    std::string name = line.substr(start, equals - start);
    name.erase(name.find_last_not_of(" \t") + 1);
    const std::string value = line.substr(open + 1, close - open - 1);
    if (!IsZ85Key(value)) {
      throw KeyError(path + ":" + std::to_string(number) + ": " + name + " is not a 40-character Z85 key");
    }
    fields[name] = value;
  }
  return fields;
}

namespace {

std::string Field(const std::map<std::string, std::string>& fields, const std::string& path, const char* name) {
  const auto found = fields.find(name);
  if (found == fields.end()) throw KeyError(path + ": no " + name + " in the key file");
  return found->second;
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw KeyError(path + ": cannot create (" + std::strerror(errno) + ")");
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw KeyError(path + ": cannot write");
}

}  // namespace

KeyPair GenerateKeyPair() {
  char public_key[kZ85KeyChars + 1] = {};
  char secret_key[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    throw KeyError(std::string("libzmq cannot make CURVE keys: ") + zmq_strerror(zmq_errno()));
  }
  return {public_key, secret_key};
}

void WriteKeyPair(const KeyPair& keys, const std::string& base) {
  const std::string public_line = "public-key = \"" + keys.public_key + "\"\n";
  WriteFile(base + ".key",
            "# Thalamus CURVE key pair: keep this file secret.\n" + public_line + "secret-key = \"" + keys.secret_key +
                "\"\n",
            0600);
  WriteFile(base + ".pub", "# Thalamus CURVE public key: give it to the peers that trust it.\n" + public_line, 0644);
}

KeyPair ReadKeyPair(const std::string& path) {
  const auto fields = ParseKeyFields(ReadKeyFileText(path, "key file"), path);
  KeyPair keys{Field(fields, path, "public-key"), Field(fields, path, "secret-key")};
  char derived[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived) {
    throw KeyError(path + ": the public key does not belong to the secret key");
  }
  return keys;
}

std::string ReadPublicKey(const std::string& path) {
  return Field(ParseKeyFields(ReadKeyFileText(path, "key file"), path), path, "public-key");
}

std::vector<std::string> ReadPublicKeys(const std::string& dir) {
  std::error_code error;
  std::vector<std::string> keys;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".pub") keys.push_back(ReadPublicKey(entry.path().string()));
  }
  if (error) throw KeyError(dir + ": cannot read the authorized keys folder (" + error.message() + ")");
  return keys;
}

void MakeCurveServer(zmq::socket_t& socket, const KeyPair& keys, const std::string& zap_domain) {
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  socket.set(zmq::sockopt::zap_domain, zap_domain);
}

void MakeCurveClient(zmq::socket_t& socket, const KeyPair& keys, const std::string& server_public_key) {
  socket.set(zmq::sockopt::curve_serverkey, server_public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
}

}  // namespace thalamus::security
