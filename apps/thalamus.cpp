// thalamus: the command-line tool (cli/cli.h).
#include "cli/cli.h"

int main(int argc, char** argv) { return thalamus::cli::Main(argc, argv); }
