#!/usr/bin/env python3
"""deploy/prometheus and deploy/grafana against a live router and a real Prometheus.

1. promtool accepts the alert rules and the scrape config, and finds nothing
   to say about the router's /metrics (names, units, help).
2. Every metric the dashboard's panels and the alerts query is one a live
   router exports (its /metrics, with a configured service and no traffic).
3. A real Prometheus (Debian's `prometheus`) scrapes that router: a query over
   its HTTP API sees the live worker, every dashboard and alert expression
   evaluates without error, and every rule is healthy with none firing.

Usage: observability_test.py BIN_DIR. Standard library only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALERTS = os.path.join(ROOT, "deploy/prometheus/alerts.yml")
SCRAPE = os.path.join(ROOT, "deploy/prometheus/prometheus.yml")
DASHBOARD = os.path.join(ROOT, "deploy/grafana/thalamus.json")


def fail(message):
    print("observability: FAILED: " + message)
    sys.exit(1)


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_for(predicate, seconds, what):
    until = time.time() + seconds
    while time.time() < until:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    fail("timed out waiting for " + what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard_exprs():
    dashboard = json.load(open(DASHBOARD))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    if not exprs:
        fail("the dashboard has no queries")
    return exprs


def alert_exprs():
    # Each rule's expr: a one-line value or a `|` block (the file's only two forms).
    exprs, lines = [], open(ALERTS).read().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not match:
            continue
        if match.group(2) != "|":
            exprs.append(match.group(2))
            continue
        indent, block = len(match.group(1)), []
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            block.append(follow.strip())
        exprs.append(" ".join(block))
    return exprs


def exported_families(metrics_text):
    return {m.group(1): m.group(2) for m in re.finditer(r"^# TYPE (\S+) (\S+)$", metrics_text, re.M)}


def check_metrics_exist(exprs, families):
    for expr in exprs:
        for name in set(re.findall(r"\b(?:thalamus|process)_[a-z_]+", expr)):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name in families or families.get(base) == "histogram":
                continue
            fail("'%s' (in %s) is not exported by the router" % (name, expr))


def main():
    bin_dir = sys.argv[1]
    if not shutil.which("promtool") or not shutil.which("prometheus"):
        fail("promtool and prometheus are needed (Debian's prometheus package; scripts/common.sh installs it)")
    for args in (["check", "rules", ALERTS], ["check", "config", SCRAPE]):
        result = subprocess.run(["promtool"] + args, capture_output=True, text=True, cwd=os.path.dirname(SCRAPE))
        if result.returncode != 0:
            fail("promtool %s: %s%s" % (" ".join(args), result.stdout, result.stderr))

    work = tempfile.mkdtemp(prefix="thalamus-observability-")
    processes = []
    try:
        config = os.path.join(work, "thalamus.yaml")
        keys = os.path.join(work, "api-keys")
        key = subprocess.run([os.path.join(bin_dir, "thalamus"), "keys", "api", "--name", "dashboards", "--file", keys],
                             capture_output=True, text=True, check=True).stdout.strip()
        open(config, "w").write(
            "http: {port: 0, api_keys: %s}\n"
            'broker: {frontend: "tcp://127.0.0.1:*", backend: "tcp://127.0.0.1:*", heartbeat_ms: 100}\n'
            "experts:\n  - {name: echo, kind: echo, replicas: 1}\n" % keys)
        ready = os.path.join(work, "ready.json")
        log = open(os.path.join(work, "router.log"), "w")
        processes.append(subprocess.Popen([os.path.join(bin_dir, "thalamus-router"), "--config", config,
                                           "--ready-file", ready], stdout=log, stderr=log))
        wait_for(lambda: os.path.exists(ready) and os.path.getsize(ready) > 0, 30, "the router")
        port = json.load(open(ready))["http_port"]
        router = "http://127.0.0.1:%d" % port
        wait_for(lambda: urllib.request.urlopen(router + "/readyz", timeout=2).status == 200, 30, "/readyz")

        # One query over each front end (series labelled by status appear with their first answer).
        chat = json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode()
        request = urllib.request.Request(router + "/v1/chat/completions", data=chat, headers={
            "Content-Type": "application/json", "Authorization": "Bearer " + key})
        json.loads(urllib.request.urlopen(request, timeout=10).read())
        subprocess.run([os.path.join(bin_dir, "thalamus"), "query", "--frontend", json.load(open(ready))["frontend"],
                        "--timeout-ms", "10000", "hello"], check=True, capture_output=True)

        exprs = dashboard_exprs() + alert_exprs()
        metrics = get(router + "/metrics")
        check_metrics_exist(exprs, exported_families(metrics))
        lint = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True)
        if lint.returncode != 0 or lint.stdout.strip() or lint.stderr.strip():
            fail("promtool check metrics on the router's /metrics: " + lint.stdout + lint.stderr)

        prometheus_port = free_port()
        scrape = os.path.join(work, "prometheus.yml")
        open(scrape, "w").write(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [%s]\n"
            "scrape_configs:\n  - job_name: thalamus-router\n    static_configs:\n"
            "      - targets: ['127.0.0.1:%d']\n" % (json.dumps(ALERTS), port))
        prometheus_log = open(os.path.join(work, "prometheus.log"), "w")
        processes.append(subprocess.Popen(
            ["prometheus", "--config.file=" + scrape, "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
             "--web.listen-address=127.0.0.1:%d" % prometheus_port], stdout=prometheus_log, stderr=prometheus_log))
        api = "http://127.0.0.1:%d/api/v1/" % prometheus_port

        def query(expr):
            return json.loads(get(api + "query?" + urllib.parse.urlencode({"query": expr})))

        def live_echo_worker():
            result = query('thalamus_live_workers{service="echo"}')["data"]["result"]
            return result and result[0]["value"][1] == "1"
        wait_for(live_echo_worker, 60, "Prometheus to scrape the router's live worker")
        for expr in exprs:
            answer = query(expr)
            if answer.get("status") != "success":
                fail("Prometheus could not evaluate %s: %s" % (expr, answer))

        def rules_evaluated():
            groups = json.loads(get(api + "rules"))["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return len(rules) == len(alert_exprs()) and all(r.get("lastEvaluation", "").startswith("2")
                                                            and not r["lastEvaluation"].startswith("0001")
                                                            for r in rules)
        wait_for(rules_evaluated, 30, "every alert rule to be evaluated")
        rules = [r for g in json.loads(get(api + "rules"))["data"]["groups"] for r in g["rules"]]
        for rule in rules:
            if rule["health"] != "ok":
                fail("rule %s: %s %s" % (rule["name"], rule["health"], rule.get("lastError", "")))
            if rule["state"] != "inactive":
                fail("rule %s is %s on a healthy router" % (rule["name"], rule["state"]))
        print("observability: %d dashboard/alert queries exported and evaluated; %d rules healthy"
              % (len(exprs), len(rules)))
        print("1 passed, 0 failed")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
