"""Machine-readable output: the real ``fog`` prints each kind's typed document as JSON (for
jq) and YAML, with the values the continuum, the snapshot or the run really have; and shell
completion scripts that click answers with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _programs import build, fog

from foglayer.cluster import Continuum, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def _doc(r: subprocess.CompletedProcess, kind: str) -> dict:
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == kind and doc["version"] == 1
    return doc


# -- fog run --stats ----------------------------------------------------------------------------


def test_run_stats_json_is_the_last_stderr_line_and_counts_the_guests_calls(tmp_path):
    modes = build("rt_modes")
    r = fog("run", "-o", "json", modes, "hello")
    assert r.returncode == 0 and r.stdout == "hello from wasm\n"
    doc = json.loads(r.stderr.splitlines()[-1])
    assert doc["kind"] == "RunStats" and doc["exit_code"] == 0
    assert doc["fuel"] > 0 and doc["peak_memory"] >= 65536 and doc["wall_time"] > 0
    assert doc["wasi_calls_by_kind"]["fd_write"] >= 1
    assert doc["wasi_calls"] == sum(doc["wasi_calls_by_kind"].values())
    assert doc["wasi_path"] in ("native", "python")
    r = fog("run", "--stats", "-o", "yaml", modes, "exit", "3")
    y = yaml.safe_load(r.stderr)
    assert r.returncode == 3 and y["kind"] == "RunStats" and y["exit_code"] == 3


# -- fog inspect --------------------------------------------------------------------------------


def test_inspect_json_describes_the_snapshot(tmp_path):
    compute = build("snap_compute")
    snap = tmp_path / "c.fogsnap"
    r = fog("run", "--checkpoint-every", "0.3", "--stop-after-checkpoint", "--checkpoint-to",
            snap, "--env", "MODE=test", compute, "100", cwd=tmp_path)
    assert "stopped after checkpoint" in r.stderr, r.stderr
    doc = _doc(fog("inspect", "-o", "json", snap), "Snapshot")
    assert doc["snapshot_kind"] == "command" and doc["path"] == str(snap)
    assert doc["args"][1:] == ["100"] and doc["env"] == {"MODE": "test"}
    assert doc["file_size"] == snap.stat().st_size and doc["checkpoints"] == 1
    assert 0 < doc["stored_pages"] <= doc["memory_pages"]
    assert {d["where"] for d in doc["descriptors"]} >= {"<stdio 0>", "<stdio 1>", "<stdio 2>"}
    assert any(g["type"] == "i32" for g in doc["globals"])
    assert yaml.safe_load(fog("inspect", "-o", "yaml", snap).stdout) == doc


# -- fog ps, nodes, explain -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def continuum(tmp_path_factory):
    root = tmp_path_factory.mktemp("continuum")
    c = Continuum(root, [NodeSpec("cloud", "cloud"), NodeSpec("iot", "iot")], tee="sim",
                  node_timeout=3.0, lease_ttl=3.0, heartbeat=0.25)
    c.start()
    client = c.client()
    try:
        wait_until(lambda: sum(n["state"] == "ready" for n in client.nodes().values()) == 2,
                   60, "two ready nodes")
        p = root / "svc.yaml"
        p.write_text(f"name: svc\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                     "replicas: 2\nlimits: {memory: 16MiB}\n")
        m = load_manifest(p)
        rec = client.deploy(m)
        client.wait("svc", rec["generation"], 2, 60, states=("running",))
        yield c
    finally:
        client.close()
        c.stop()


def _fog_on(c: Continuum, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOG_CREDS": str(c.creds("admin"))}
    env.pop("FOG_SERVER", None)
    return fog(*args, env=env)


def test_ps_json_lists_each_replica_where_it_runs(continuum):
    doc = _doc(_fog_on(continuum, "ps", "-o", "json"), "AppList")
    (app,) = doc["items"]
    assert (app["name"], app["kind"], app["replicas"], app["generation"]) == ("svc", "service", 2, 1)
    assert app["tenant"] == "default"
    assert [r["replica"] for r in app["instances"]] == [0, 1]
    assert all(r["state"] == "running" and r["node"] in ("cloud", "iot") for r in app["instances"])
    assert yaml.safe_load(_fog_on(continuum, "ps", "-o", "yaml").stdout)["items"][0]["name"] == "svc"


def test_nodes_json_has_claims_trust_and_what_each_node_holds(continuum):
    doc = _doc(_fog_on(continuum, "nodes", "-o", "json"), "NodeList")
    nodes = {n["name"]: n for n in doc["items"]}
    assert set(nodes) == {"cloud", "iot"}
    assert nodes["iot"]["memory_capacity"] == 64 << 20 and nodes["iot"]["fuel_rate"] > 0
    assert nodes["cloud"]["labels"]["tier"] == "cloud" and nodes["cloud"]["trusted"] is False
    assert sum(n["instances"] for n in nodes.values()) == 2
    assert sum(n["memory_used"] for n in nodes.values()) == 2 * (16 << 20)


def test_explain_json_has_every_candidate_and_one_winner_per_replica(continuum):
    doc = _doc(_fog_on(continuum, "explain", "svc", "-o", "json"), "Explanation")
    assert doc["app"] == "svc" and [p["replica"] for p in doc["replicas"]] == [0, 1]
    for p in doc["replicas"]:
        winners = [c["node"] for c in p["candidates"] if c["winner"]]
        assert winners == [p["winner"]] and p["winner"] in ("cloud", "iot")
        for c in p["candidates"]:
            assert c["passed"] == (c["filter"] is None)
            assert (c["total"] is not None) == c["passed"]


def test_attest_json_gives_each_nodes_result_checked_against_the_controller(continuum):
    def attested() -> dict | None:
        r = _fog_on(continuum, "attest", "cloud", "-o", "json")
        doc = _doc(r, "AttestationList") if r.returncode == 0 else None
        return doc if doc and doc["items"][0]["status"] != "none" else None

    doc = wait_until(attested, 60, "cloud's attestation result")
    (a,) = doc["items"]
    assert a["node"] == "cloud" and a["status"] == "affirming" and a["fresh"] is True
    assert a["backend"] == "sim" and a["proves_nothing"] is True  # and says so
    assert a["issued_at"] <= a["expires_at"] and isinstance(a["vector"], dict)
    by_app = _doc(_fog_on(continuum, "attest", "svc", "-o", "json"), "AttestationList")
    assert {x["node"] for x in by_app["items"]} <= {"cloud", "iot"} and by_app["items"]


def test_output_format_is_checked_in_one_line():
    r = fog("ps", "-o", "xml")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "'xml' is not one of" in r.stderr


# -- completion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o"), ("zsh", "#compdef fog"),
                                           ("fish", "complete --no-files --command fog")])
def test_completion_prints_a_script_for_each_shell(shell, marker):
    r = fog("completion", shell)
    assert r.returncode == 0 and marker in r.stdout and "_FOG_COMPLETE" in r.stdout


def test_completion_answers_commands_and_option_values():
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_FOG_COMPLETE": "bash_complete", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
        r = subprocess.run([sys.executable, "-m", "foglayer.cli"], env=env, capture_output=True,
                           text=True, timeout=60)
        return [ln.split(",", 1)[1] for ln in r.stdout.splitlines()]

    assert {"ps", "nodes", "explain", "inspect", "completion"} <= set(complete("fog "))
    assert complete("fog ps -o ") == ["table", "json", "yaml"]
    assert {"--max-memory", "--checkpointable", "--checkpoint-to"} <= set(complete("fog run --"))


def test_every_field_of_every_kind_is_documented():
    import msgspec

    from foglayer.cli import _output, _status_docs  # noqa: F401 - defines AppList, NodeList

    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli-output.md").read_text()
    kinds = _output._Doc.__subclasses__()
    assert len(kinds) >= 7
    seen: set[type] = set()
    todo = list(kinds)
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        assert t not in kinds or f"`{t.__name__}`" in docs, t.__name__
        for f in msgspec.structs.fields(t):
            assert f"`{f.name}`" in docs, f"{t.__name__}.{f.name} is not in docs/cli-output.md"
            for arg in getattr(f.type, "__args__", ()) or ():
                if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
                    todo.append(arg)
