#!/usr/bin/env bash
# Installs what Thalamus needs (Debian 12), builds it, and runs the router on
# the embedded default config (config/default.yaml): the router plus the local
# experts it starts. Extra arguments go to thalamus-router (e.g. --config FILE).
source "$(dirname "$0")/common.sh"
install_packages
build_thalamus
cd "$THALAMUS_ROOT"
cat >&2 <<'HELP'

Thalamus is starting. In another terminal:
  curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
       -d '{"messages":[{"role":"user","content":"Hello, Thalamus"}]}'
  curl -s localhost:8080/v1/models
  curl -s localhost:8080/metrics
Stop with Ctrl-C.

HELP
exec "$BUILD_DIR/bin/thalamus-router" "$@"
