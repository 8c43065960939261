#!/usr/bin/env python3
"""deploy/kubernetes and deploy/docker, checked without a cluster or a container runtime.

For each overlay, `kubectl kustomize` renders it; every object validates
against the Kubernetes API schemas in strict mode (kubernetes-validate; the
Prometheus Operator's ServiceMonitor, a CRD, is checked for its fields here);
and the pieces fit: the config in the ConfigMap loads (`thalamus config`),
every expert Deployment serves a service that config names and connects to a
Service that exposes the backend port, every container runs as non-root with
liveness and readiness probes and resource requests, every Deployment has a
PodDisruptionBudget, and pods wait longer than the drain before SIGKILL. The
Dockerfile installs with scripts/common.sh (one package list), runs as a
non-root user and copies no build tree.

Usage: kubernetes_test.py BIN_DIR KUBERNETES_VALIDATE. Needs kubectl and PyYAML.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERLAYS = os.path.join(ROOT, "deploy/kubernetes/overlays")
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def fail(message):
    print("kubernetes: FAILED: " + message)
    sys.exit(1)


def render(overlay):
    result = subprocess.run(["kubectl", "kustomize", overlay], capture_output=True, text=True)
    if result.returncode != 0:
        fail("kubectl kustomize %s: %s" % (overlay, result.stderr))
    return result.stdout, [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate_schemas(validator, rendered, objects):
    core = [o for o in objects if (o["apiVersion"], o["kind"]) not in CRDS]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        yaml.safe_dump_all(core, out)
    try:
        result = subprocess.run([validator, "--strict", "--quiet", out.name], capture_output=True, text=True)
    finally:
        os.unlink(out.name)
    if result.returncode != 0:
        fail("kubernetes-validate: %s%s" % (result.stdout, result.stderr))
    for o in objects:
        if o["kind"] == "ServiceMonitor":
            endpoints = o["spec"]["endpoints"]
            if not o["spec"]["selector"]["matchLabels"] or not all(e.get("port") and e.get("path") for e in endpoints):
                fail("ServiceMonitor %s: needs a selector and port/path per endpoint" % o["metadata"]["name"])


def check_config(bin_dir, objects):
    maps = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("thalamus-config")]
    if len(maps) != 1:
        fail("expected one thalamus-config ConfigMap, found %d" % len(maps))
    text = maps[0]["data"]["thalamus.yaml"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        out.write(text)
    try:
        result = subprocess.run([os.path.join(bin_dir, "thalamus"), "config", "--config", out.name],
                                capture_output=True, text=True)
    finally:
        os.unlink(out.name)
    if result.returncode != 0:
        fail("the ConfigMap's config does not load: " + result.stdout + result.stderr)
    return yaml.safe_load(text)


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


def check_workloads(objects, config):
    services = {e["name"] for e in config["experts"]}
    grace_s = config["broker"].get("drain_grace_ms", 30000) / 1000
    backend_ports = {(o["metadata"]["name"], p["port"]) for o in objects if o["kind"] == "Service"
                     for p in o["spec"]["ports"]}
    budgets = [o["spec"]["selector"]["matchLabels"] for o in objects if o["kind"] == "PodDisruptionBudget"]
    served = set()
    for o in objects:
        if o["kind"] not in ("Deployment", "StatefulSet"):
            continue
        name, pod = o["metadata"]["name"], o["spec"]["template"]
        labels = pod["metadata"]["labels"]
        if not any(all(labels.get(k) == v for k, v in b.items()) for b in budgets):
            fail("%s has no PodDisruptionBudget" % name)
        if pod["spec"].get("terminationGracePeriodSeconds", 30) <= grace_s:
            fail("%s: terminationGracePeriodSeconds must exceed broker.drain_grace_ms" % name)
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
            fail("%s does not run as non-root" % name)
        for c in pod["spec"]["containers"]:
            for key in ("livenessProbe", "readinessProbe"):
                if key not in c:
                    fail("%s/%s has no %s" % (name, c["name"], key))
            if not c.get("resources", {}).get("requests"):
                fail("%s/%s has no resource requests" % (name, c["name"]))
            args = c.get("args", [])
            if c.get("command") == ["thalamus-expert"]:
                expert = arg_after(args, "--expert")
                if expert not in services:
                    fail("%s serves '%s', which the config does not name" % (name, expert))
                served.add(expert)
                match = re.match(r"tcp://([^:]+):(\d+)$", arg_after(args, "--backend") or "")
                if not match or (match.group(1), int(match.group(2))) not in backend_ports:
                    fail("%s connects to %s, which no Service exposes" % (name, arg_after(args, "--backend")))
                health = arg_after(args, "--health-file")
                for key in ("livenessProbe", "readinessProbe"):
                    command = c[key].get("exec", {}).get("command", [])
                    if command[:2] != ["thalamus", "probe"] or arg_after(command, "--file") != health:
                        fail("%s: %s must run `thalamus probe --file %s`" % (name, key, health))
                if "--ready" not in c["readinessProbe"]["exec"]["command"]:
                    fail("%s: the readiness probe needs --ready" % name)
    if served != services:
        fail("services without a Deployment: %s" % sorted(services - served))


def check_dockerfile():
    text = open(os.path.join(ROOT, "deploy/docker/Dockerfile")).read()
    if "source scripts/common.sh && install_packages" not in text:
        fail("the Dockerfile must install with scripts/common.sh's install_packages (one package list)")
    final = text[text.rindex("\nFROM "):]
    user = re.search(r"^USER (\S+)", final, re.M)
    if not user or user.group(1) in ("root", "0"):
        fail("the image's last stage must run as a non-root USER")
    if re.search(r"^COPY (?!--from=build /out/ /)", final, re.M):
        fail("the last stage may copy only /out from the build stage")
    ignored = open(os.path.join(ROOT, ".dockerignore")).read().split()
    for needed in ("build*", "data", ".git"):
        if needed not in ignored:
            fail(".dockerignore must leave out %s" % needed)


def main():
    bin_dir, validator = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
    if not shutil.which("kubectl"):
        fail("kubectl is needed (scripts/common.sh installs Debian's kubernetes-client)")
    if not validator or not os.access(validator, os.X_OK):
        fail("kubernetes-validate is needed (scripts/test_data.sh installs it; -DTHALAMUS_KUBERNETES_VALIDATE)")
    overlays = sorted(os.listdir(OVERLAYS))
    for overlay in overlays:
        rendered, objects = render(os.path.join(OVERLAYS, overlay))
        validate_schemas(validator, rendered, objects)
        check_workloads(objects, check_config(bin_dir, objects))
        print("kubernetes: overlays/%s: %d objects rendered and valid" % (overlay, len(objects)))
    check_dockerfile()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
