// thalamus-router: the router process (router/router.h).
#include "router/router.h"

int main(int argc, char** argv) { return thalamus::router::RouterMain(argc, argv); }
