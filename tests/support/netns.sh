# Shared by the multi-host tests (sourced, not run): hosts as network
# namespaces joined by veth pairs, the processes they start, and cleanup of
# both however the test ends. Set NETNS_TEST (the name in messages) before
# sourcing. Needs root and iproute2: without them the test is skipped (77).
if [ "$(id -u)" -ne 0 ] || ! command -v ip > /dev/null; then
  echo "$NETNS_TEST: needs root and iproute2; skipped"
  exit 77
fi
netns_id=$$
work=$(mktemp -d)
pids=()        # background processes, killed at exit
namespaces=()  # deleted at exit (their veth ends go with them)
netns_cleanup() {
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2> /dev/null || true; done
  rm -rf "$work"
}
trap netns_cleanup EXIT

# fail MESSAGE: prints it with the router's and the experts' logs (in $work), exits 1.
fail() {
  echo "$NETNS_TEST: FAILED: $*"
  echo "--- router log"; cat "$work/router.log" || true
  for f in "$work"/expert-*.log; do echo "--- $f"; cat "$f"; done
  exit 1
}

# netns_add NS: a namespace with its loopback up.
netns_add() {
  ip netns add "$1"
  namespaces+=("$1")
  ip -n "$1" link set lo up
}

# netns_link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair between two
# namespaces, each end with its address (a /24) and up.
netns_link() {
  ip link add "$2" type veth peer name "$5"
  ip link set "$2" netns "$1"
  ip link set "$5" netns "$4"
  ip -n "$1" addr add "$3/24" dev "$2"
  ip -n "$4" addr add "$6/24" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
