#!/usr/bin/env bash
# Three hosts in network namespaces: the router in one, an echo replica in
# each of two others, each reaching the router only through its own veth
# link. Under load, one replica's link goes down: its requests are retried on
# the other replica and no request fails; when the link comes back the
# replica rejoins by itself. Needs root (ip netns); exits 77 (skipped)
# without it. Usage: multihost_partition_test.sh BIN_DIR
set -euo pipefail
bin=$1
NETNS_TEST=partition
source "$(dirname "$0")/../support/netns.sh"
id=$netns_id
net=$((id % 200 + 20))
router_ns=thp-router-$id
netns_add "$router_ns"
# host NAME SUBNET: a namespace linked to the router's by its own veth pair.
host() {
  netns_add "thp-$1-$id"
  netns_link "$router_ns" "vr$1$id" "$2.1" "thp-$1-$id" "ve$1$id" "$2.2"
}
host a "10.232.$net"
host b "10.233.$net"

cd "$work"
cat > thalamus.yaml << YAML
http: {host: 127.0.0.1, port: 8080}
broker: {frontend: "", backend: "tcp://0.0.0.0:5556", heartbeat_ms: 100, liveness: 3}
experts:
  - {name: echo, kind: echo, launch: external, concurrency: 2, delay_ms: 50}
YAML
ip netns exec "$router_ns" "$bin/thalamus-router" --config thalamus.yaml > router.log 2>&1 &
pids+=($!)
ip netns exec "thp-a-$id" "$bin/thalamus-expert" --config thalamus.yaml --expert echo \
  --backend "tcp://10.232.$net.1:5556" > expert-a.log 2>&1 &
pids+=($!)
ip netns exec "thp-b-$id" "$bin/thalamus-expert" --config thalamus.yaml --expert echo \
  --backend "tcp://10.233.$net.1:5556" > expert-b.log 2>&1 &
pids+=($!)
in_router() { ip netns exec "$router_ns" curl -s --max-time 10 "$@"; }
live() { in_router localhost:8080/v1/models | grep -o '"live_workers":[0-9]*' | cut -d: -f2; }
for _ in $(seq 100); do [ "$(live 2> /dev/null)" = 2 ] && break; sleep 0.1; done
[ "$(live)" = 2 ] || fail "both replicas did not join"

# Load: 4 clients, 40 requests each, every answer checked.
loaders=()
for c in 1 2 3 4; do
  (
    for i in $(seq 40); do
      text="client $c request $i"
      answer=$(in_router localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
        -d "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"$text\"}]}" -w ' %{http_code}') || answer="curl failed"
      if [[ "$answer" == *"\"$text\""*" 200" ]]; then echo ok; else echo "FAIL $answer"; fi
    done > "client-$c.out"
  ) &
  pids+=($!)
  loaders+=($!)
done
sleep 1
ip -n "thp-a-$id" link set "vea$id" down  # replica a's host is cut off mid-load
for pid in "${loaders[@]}"; do wait "$pid"; done
failed=$(cat client-*.out | grep -c FAIL || true)
answered=$(cat client-*.out | grep -c '^ok$' || true)
[ "$failed" = 0 ] || fail "$failed of 160 requests failed: $(grep -h FAIL client-*.out | head -3)"
[ "$answered" = 160 ] || fail "$answered of 160 answered"
[ "$(live)" = 1 ] || fail "live workers with a cut off: $(live), expected 1"
grep -q "missed heartbeats" router.log || fail "the router did not notice the cut"

ip -n "thp-a-$id" link set "vea$id" up  # the link returns: replica a rejoins by itself
for _ in $(seq 100); do [ "$(live)" = 2 ] && break; sleep 0.1; done
[ "$(live)" = 2 ] || fail "replica a did not rejoin"
retries=$(in_router localhost:8080/metrics | grep '^thalamus_expert_retries_total{service="echo"}' | awk '{print $2}')
echo "partition: 160 requests answered while a replica's link was down ($retries retried); it rejoined"
echo "1 passed, 0 failed"
