// security/: CURVE keys for the ZeroMQ endpoints, and the ZAP handler that
// lets only authorized keys connect (zap_handler.h).
//
// A key pair lives in two files that `thalamus keys generate` writes:
// NAME.key (mode 0600) holds the public and the secret key, NAME.pub only the
// public key, each as a line `public-key = "Z85"` / `secret-key = "Z85"`
// (40 Z85 characters, ZeroMQ's text form of a 32-byte key; '#' starts a
// comment). Keys are files, never inline in the YAML.
//
// Errors: every function throws KeyError naming the file (and the line) for
// a missing, unreadable or malformed key; never anything else. Thread-safe.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace thalamus::security {

class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct KeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters
};

// The whole text of a key file; `what` names the kind of file in the error
// ("key file", "API keys file").
std::string ReadKeyFileText(const std::string& path, const char* what);

// The `name = "Z85"` lines of a key file's `text` (what the readers below
// use; `path` names it in errors).
std::map<std::string, std::string> ParseKeyFields(const std::string& text, const std::string& path);

// A fresh key pair from libzmq (libsodium's randomness).
KeyPair GenerateKeyPair();
// Writes `base`.key (0600, created that way) and `base`.pub; refuses to
// overwrite an existing file.
void WriteKeyPair(const KeyPair& keys, const std::string& base);
// The pair in a .key file; the public key is checked against the secret one.
KeyPair ReadKeyPair(const std::string& path);
// The public key in a .pub (or .key) file.
std::string ReadPublicKey(const std::string& path);
// The public keys of every *.pub file in `dir`, for the authorized set.
std::vector<std::string> ReadPublicKeys(const std::string& dir);

// Makes `socket` (before it binds) a CURVE server with `keys`, whose clients
// the ZAP handler checks under `zap_domain`.
void MakeCurveServer(zmq::socket_t& socket, const KeyPair& keys, const std::string& zap_domain);
// Makes `socket` (before it connects) a CURVE client with its own `keys`,
// talking to the server whose public key is `server_public_key`.
void MakeCurveClient(zmq::socket_t& socket, const KeyPair& keys, const std::string& server_public_key);

}  // namespace thalamus::security
