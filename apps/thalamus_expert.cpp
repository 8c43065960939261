// thalamus-expert: serves one expert of a config (experts/worker.h).
#include "experts/worker.h"

int main(int argc, char** argv) { return thalamus::experts::ExpertMain(argc, argv); }
