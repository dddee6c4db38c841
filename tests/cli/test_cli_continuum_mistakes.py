"""The `fog` commands of live moves and trust, as a user runs them against a real continuum
(nats-server, a controller, two sim nodes as processes): every mistake is one line naming
what and where, a non-zero exit, never a traceback; the views say what drain and attestation
did."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _continuum import running
from _programs import fog

from foglayer.cluster import NodeSpec, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """``fog ARGS...`` on a continuum of cloud and edge (sim TEE, the development policy)."""
    root = tmp_path_factory.mktemp("cli-continuum")
    with running(root / "c", [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")],
                 tee="sim") as (c, client):
        env = {**os.environ, "FOG_CREDS": str(c.creds("admin"))}
        env.pop("FOG_SERVER", None)

        def run(*args):
            return fog(*args, env=env, cwd=root)

        wait_until(lambda: all(n.get("attested") == "affirming" for n in json.loads(
            run("nodes", "-o", "json").stdout or '{"items": []}')["items"]) and len(
            client.nodes()) == 2, 60, "both nodes attested")
        yield run, client, root


def service(tmp_path: Path, name: str, placement: str) -> Path:
    """The manifest of the test service ``name`` with a ``placement`` line."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    f"{placement}\n")
    return path


def one_line_error(r, code: int = 2) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert err.startswith("fog: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_uncordon_and_trust_of_a_node_that_does_not_exist_are_refused(cli):
    run, _, _ = cli
    for args in (["uncordon", "nowhere"], ["drain", "nowhere"], ["trust", "nowhere"]):
        assert "no node named 'nowhere'" in one_line_error(run(*args)), args


def test_deploy_refuses_a_secret_that_does_not_exist(cli, tmp_path):
    run, client, _ = cli
    path = tmp_path / "needs.yaml"
    path.write_text(f"name: needs\nmodule: {PROGRAMS / 'secret_reader.c'}\n"
                    "secrets: [never_stored]\nrestart: never\n")
    err = one_line_error(run("deploy", path))
    assert f"{path}: secrets: 'never_stored' does not exist" in err
    assert "fog secret put never_stored" in err
    assert "needs" not in client.apps()  # nothing was written


def test_deploy_exits_nonzero_when_no_node_can_run_the_app(cli, tmp_path):
    run, client, _ = cli
    path = service(tmp_path, "nofit", "constraints: {labels: {tier: mars}}")
    r = run("deploy", path, "--wait", "30")
    # the replica is named once: "nofit.0: pending: no node fits: cloud: labels (...)"
    assert "nofit.0: pending: no node fits: " in r.stdout and "tier=mars" in r.stdout, r.stdout
    assert "nofit: 1 of 1 replicas not running" in one_line_error(r, 1)
    client.stop("nofit")


def test_drain_shows_in_fog_nodes_and_fog_explain_shows_the_table_of_the_move(cli, tmp_path):
    run, client, _ = cli

    def edge() -> dict:
        items = json.loads(run("nodes", "-o", "json").stdout)["items"]
        return next(n for n in items if n["name"] == "edge")

    assert edge()["cordoned"] is False and edge()["attested"] == "affirming"
    path = service(tmp_path, "onedge", "preferences: {site: edge}")
    r = run("deploy", path)
    assert r.returncode == 0 and "onedge.0: running on edge" in r.stdout, r
    r = run("drain", "edge")
    assert r.returncode == 0 and "edge: drained and cordoned" in r.stdout, r
    try:
        assert edge()["cordoned"] is True
        table = run("nodes").stdout
        row = next(line for line in table.splitlines() if "edge" in line and "x86_64" in line)
        assert "cordoned" in row and "affirming (sim)" in row, table
        (rep,) = json.loads(run("explain", "onedge", "-o", "json").stdout)["replicas"]
        assert rep["winner"] == "cloud" and "node edge drained" in rep["why"], rep
        rows = {c["node"]: c for c in rep["candidates"]}
        # the move's own table: edge out (it is moving off it), cloud the winner
        assert not rows["edge"]["passed"] and rows["edge"]["reason"] == \
            "the node the app is moving off", rows
        assert rows["cloud"]["winner"], rows
    finally:
        assert run("uncordon", "edge").returncode == 0
        client.stop("onedge")
    assert edge()["cordoned"] is False


def test_migrate_mistakes_are_one_line_each(cli, tmp_path):
    run, client, _ = cli
    path = service(tmp_path, "pinned", "constraints: {labels: {tier: cloud}}")
    assert run("deploy", path).returncode == 0
    try:
        for args, what in (
            (["migrate", "ghost", "--to", "edge"], "no app named 'ghost'"),
            (["migrate", "pinned", "--to", "nowhere"], "no node named 'nowhere'"),
            (["migrate", "pinned", "--to", "cloud"], "pinned.0 already runs on cloud"),
            (["migrate", "pinned.3", "--to", "edge"],
             "app 'pinned' has no replica 3 (replicas: pinned.0)"),
            (["migrate", "pinned", "--to", "edge"],
             "node edge fails the labels filter: label tier=cloud required, node has tier=edge"),
            (["migrate", "pinned"], "Missing option '--to'"),
        ):
            assert what in one_line_error(run(*args)), args
    finally:
        client.stop("pinned")


def test_events_lists_the_controller_events_with_the_reason_of_a_refused_move(cli):
    run, _, _ = cli
    r = run("events", "--last", "200", "-o", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["kind"] == "EventList" and doc["items"]
    messages = [e["message"] for e in doc["items"]]
    assert any("node cloud joined" in m or "node cloud attested" in m for m in messages)
    r = run("events")
    assert r.returncode == 0 and "attested" in r.stdout, r
    assert "--last" in one_line_error(run("events", "--last", "0"))


def test_drain_says_why_an_app_cannot_leave_and_gives_up_in_one_line(cli, tmp_path):
    run, client, _ = cli
    path = service(tmp_path, "stuck", "constraints: {labels: {tier: cloud}}")
    assert run("deploy", path).returncode == 0
    try:
        r = run("drain", "cloud", "--timeout", "15")
        assert "cloud: 1 left: stuck.0" in r.stdout, r.stdout
        assert "0 left" not in r.stdout, (r.stdout, client.placements().get("stuck.0"))
        assert ("stuck.0 cannot leave cloud (drained): no node fits: " in r.stdout
                and "edge: labels (label tier=cloud required, node has tier=edge)" in r.stdout), \
            r.stdout
        assert "drain of cloud: still there after 15 s: stuck.0" in one_line_error(r)
    finally:
        assert run("uncordon", "cloud").returncode == 0
        client.stop("stuck")
