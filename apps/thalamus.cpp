// thalamus: the command-line tool (apps/thalamus_main.h).
#include "apps/thalamus_main.h"

int main(int argc, char** argv) { return thalamus::apps::ToolMain(argc, argv); }
