#!/usr/bin/env bash
# Two hosts in network namespaces joined by a veth pair (10.231.N.1 and .2,
# addresses that exist only inside this test): the router with CURVE on its
# backend and its ZeroMQ front end in one, experts and clients in the other.
# The expert with an authorized key serves; one with an unknown key and a
# plaintext one never join; a ZeroMQ client with an authorized key is
# answered, one with an unknown key and a plaintext one are refused; the
# router logs and counts the refusals. Needs root (ip netns); exits 77
# (skipped) without it. Usage: multihost_test.sh BIN_DIR
set -euo pipefail
bin=$1
NETNS_TEST=multihost
source "$(dirname "$0")/../support/netns.sh"
id=$netns_id
net=$((id % 200 + 20))
router_ns=thr-router-$id expert_ns=thr-expert-$id
router_ip=10.231.$net.1 expert_ip=10.231.$net.2
netns_add "$router_ns"
netns_add "$expert_ns"
netns_link "$router_ns" "veth-r$id" "$router_ip" "$expert_ns" "veth-e$id" "$expert_ip"

cd "$work"
mkdir experts
mkdir clients
for name in router good rogue client; do "$bin/thalamus" keys generate --out "$name" > /dev/null; done
cp good.pub experts/
cp client.pub clients/
experts='experts:
  - {name: echo, kind: echo, replicas: 1, launch: external}'
cat > router.yaml << YAML
http: {host: 127.0.0.1, port: 8080}
broker:
  frontend: tcp://$router_ip:5555
  backend: tcp://$router_ip:5556
  heartbeat_ms: 100
  curve: {router_key: router.key, router_public_key: router.pub, authorized_keys: experts, client_key: good.key}
  frontend_curve: {router_key: router.key, router_public_key: router.pub, authorized_keys: clients}
$experts
YAML
cat > plain.yaml << YAML
broker: {frontend: "", backend: "tcp://$router_ip:5556", heartbeat_ms: 100}
$experts
YAML

ip netns exec "$router_ns" "$bin/thalamus-router" --config router.yaml > router.log 2>&1 &
pids+=($!)
expert() {  # NAME ARGS...: an expert in the other namespace
  local name=$1
  shift
  ip netns exec "$expert_ns" "$bin/thalamus-expert" --expert echo --backend "tcp://$router_ip:5556" "$@" \
    > "expert-$name.log" 2>&1 &
  pids+=($!)
}
in_router() { ip netns exec "$router_ns" curl -s --max-time 5 "$@"; }
expert rogue --config router.yaml --curve-key rogue.key
expert plain --config plain.yaml
expert good --config router.yaml

for _ in $(seq 100); do
  in_router localhost:8080/readyz > /dev/null 2>&1 && [ "$(in_router -o /dev/null -w '%{http_code}' localhost:8080/readyz)" = 200 ] && break
  sleep 0.1
done
answer=$(in_router localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
  -d '{"model":"echo","messages":[{"role":"user","content":"across hosts"}]}') || fail "no answer"
grep -q "across hosts" <<< "$answer" || fail "unexpected answer: $answer"
sleep 1  # ten heartbeats: time enough for the others to have joined, were they let in
live=$(in_router localhost:8080/v1/models | grep -o '"live_workers":[0-9]*' | cut -d: -f2)
[ "$live" = 1 ] || fail "live workers: $live (expected only the authorized one)"
refused=$(in_router localhost:8080/metrics | grep '^thalamus_auth_failures_total{endpoint="backend"}' | awk '{print $2}')
[ "${refused%.*}" -ge 1 ] || fail "no refused handshake counted ($refused)"
grep -q "on backend: key .* is not authorized" router.log || fail "no backend refusal in the router's log"

# ZeroMQ clients from the other host.
client() { ip netns exec "$expert_ns" "$bin/thalamus" query --frontend "tcp://$router_ip:5555" --timeout-ms 5000 "$@"; }
got=$(client --curve-key client.key --server-key router.pub "over zeromq" 2>&1) || fail "authorized client: $got"
grep -q "over zeromq" <<< "$got" || fail "authorized client got: $got"
code=0
got=$(client --curve-key rogue.key --server-key router.pub "let me in" 2>&1) || code=$?
[ "$code" = 3 ] && grep -q "refused this client's key" <<< "$got" || fail "unknown client key: rc $code: $got"
code=0
got=$(client "let me in" 2>&1) || code=$?
[ "$code" = 3 ] || fail "plaintext client: rc $code: $got"
front=$(in_router localhost:8080/metrics | grep '^thalamus_auth_failures_total{endpoint="frontend"}' | awk '{print $2}')
[ "${front%.*}" -ge 1 ] || fail "no refused front-end handshake counted ($front)"
grep -q "on frontend: key .* is not authorized" router.log || fail "no front-end refusal in the router's log"
echo "multihost: the authorized expert and client were served across hosts; 1 live worker;" \
  "$refused refused expert handshakes, $front refused client handshakes"
echo "1 passed, 0 failed"
