// thalamus-router: the router process (apps/router_main.h).
#include "apps/router_main.h"

int main(int argc, char** argv) { return thalamus::apps::RouterMain(argc, argv); }
