// thalamus-expert: serves one expert of a config (apps/expert_main.h).
#include "apps/expert_main.h"

int main(int argc, char** argv) { return thalamus::apps::ExpertMain(argc, argv); }
