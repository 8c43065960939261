// Fuzz target: the YAML config loader (config/config.h). Whatever the file
// holds, LoadString returns a Config or throws ConfigError, and nothing else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  try {
    (void)thalamus::config::LoadString(yaml, "fuzz.yaml");
  } catch (const thalamus::config::ConfigError&) {
  }
  return 0;
}
