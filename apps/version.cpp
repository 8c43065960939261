#include "apps/version.h"

#include <cstdio>
#include <cstring>

#include "thalamus/version.h"

namespace thalamus::apps {

bool PrintVersionIfAsked(int argc, char** argv, const char* program) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("%s %s (revision %s)\n", program, THALAMUS_VERSION, THALAMUS_REVISION);
      return true;
    }
  }
  return false;
}

}  // namespace thalamus::apps
