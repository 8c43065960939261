// --version for the three binaries (private to apps/).
#pragma once

namespace thalamus::apps {

// Prints "<program> <version> (revision <git>)" and returns true when argv
// holds --version, so that the main can return 0.
bool PrintVersionIfAsked(int argc, char** argv, const char* program);

}  // namespace thalamus::apps
