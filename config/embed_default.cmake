# Writes OUTPUT, a C++ file defining thalamus::config::DefaultYaml() as the
# bytes of INPUT. Hex bytes, not a raw string, so no delimiter can clash.
file(READ ${INPUT} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${content}")
file(WRITE ${OUTPUT} "// Generated from config/default.yaml by embed_default.cmake.\n#include \"config/config.h\"\n\n"
  "namespace thalamus::config {\nconst std::string& DefaultYaml() {\n"
  "  static const char kBytes[] = {${bytes} 0};\n"
  "  static const std::string kYaml(kBytes, sizeof(kBytes) - 1);\n  return kYaml;\n}\n}  // namespace thalamus::config\n")
