"""Metrics and usage on a real continuum: Prometheus endpoints scraped over real HTTP and
checked against what the test did; per-tenant usage kept in JetStream, with exact totals
where they can be exact (invocations, and the instructions of a deterministic command)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from _continuum import running
from _programs import build

from foglayer.cluster import NodeSpec, load_manifest, wait_until
from foglayer.examples import EXAMPLES


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)", line)
        if m and not line.startswith("#"):
            out[m.group(1)] = float(m.group(2))
    return out


@pytest.fixture(scope="module")
def continuum(tmp_path_factory):
    with running(tmp_path_factory.mktemp("obs"), [NodeSpec("cloud", "cloud"),
                                                 NodeSpec("edge", "edge")]) as c:
        yield c


def manifest(tmp: Path, name: str, body: str) -> Path:
    p = tmp / f"{name}.yaml"
    p.write_text(f"name: {name}\n{body}")
    return p


def test_metrics_count_what_happened_and_usage_is_exact(continuum, tmp_path):
    c, client = continuum
    kv = load_manifest(manifest(tmp_path, "kv", f"module: {EXAMPLES / 'kvstore.c'}\n"
                                "kind: service\ntenant: acme\npreferences: {site: edge}\n"))
    rec = client.deploy(kv)
    (p,) = client.wait("kv", rec["generation"], 1, 120, states=("running",))
    for i in range(3):
        client.invoke("kv", "put", f"k{i}=v".encode())
    for i in range(5):
        client.invoke("kv", "get", f"k{i % 3}".encode())

    wasm = build("snap_compute")
    calc = load_manifest(manifest(tmp_path, "calc", f"module: {wasm}\nargs: ['2']\n"
                                  "restart: never\ntenant: acme\n"))
    rec = client.deploy(calc)
    client.wait("calc", rec["generation"], 1, 120, states=("exited",))

    node = scrape(c.metrics_ports[f"node-{p['node']}"])
    assert node['fog_invocations_total{app="kv",function="put"}'] == 3
    assert node['fog_invocations_total{app="kv",function="get"}'] == 5
    assert node['fog_invocation_seconds_count{app="kv",function="get"}'] == 5
    assert node['fog_fuel_total{app="kv"}'] > 0
    assert node['fog_peak_memory_bytes{app="kv"}'] > 0
    assert node['fog_node_instances{state="running"}'] >= 1
    ctl = scrape(c.metrics_ports["controller-0"])
    assert ctl['fog_nodes{state="ready"}'] == 2
    assert ctl['fog_scheduler_decisions_total{result="placed"}'] >= 2
    assert ctl['fog_deploy_to_running_seconds_count'] >= 1
    assert ctl['fog_instances{state="running"}'] == 1
    assert ctl['fog_controller_leader'] == 1

    # The same module under fog run: its instruction count is what the node metered.
    run = subprocess.run([sys.executable, "-m", "foglayer.cli", "run", "-o", "json", str(wasm), "2"],
                         capture_output=True, text=True, timeout=120)
    fuel = json.loads(run.stderr.strip().splitlines()[-1])["fuel"]

    def usage() -> dict:
        out = subprocess.run([sys.executable, "-m", "foglayer.cli", "usage", "--tenant", "acme",
                              "-o", "json", "--creds", str(c.creds("admin"))],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        return {r["app"]: r for r in doc["apps"]}

    try:
        apps = wait_until(lambda: (u := usage()) and u.get("kv", {}).get("invocations") == 8
                          and u.get("calc", {}).get("fuel") == fuel and u, 30, "usage to arrive")
    except TimeoutError:
        raise AssertionError(f"usage {usage()} (fog run fuel {fuel})") from None
    assert apps["calc"]["memory_seconds"] > 0 and apps["kv"]["wasi_calls"] >= 0
    assert {r["tenant"] for r in apps.values()} == {"acme"}

    # A node killed with SIGKILL: lost, in the controller's metrics; its usage stays.
    c.kill(f"node-{p['node']}", signal.SIGKILL)
    wait_until(lambda: scrape(c.metrics_ports["controller-0"])['fog_nodes{state="lost"}'] == 1,
               30, "the node lost in the metrics")
    assert usage()["kv"]["invocations"] == 8
