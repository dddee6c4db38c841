"""Live moves of a service between nodes (``fog migrate``): a real nats-server, a controller
and node agents as processes of their own. The state goes with the app; calls made during
the move are held and served after it, none lost and none answered twice."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _continuum import move_killing_the_target, running

from foglayer.cluster import MoveError, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge"), NodeSpec("iot", "iot")]
    with running(tmp_path_factory.mktemp("continuum"), nodes, timeout=60,
                 node_timeout=3.0) as (c, client):
        yield c, client


def deploy(client, tmp_path: Path, name: str, prefer_edge: bool = False) -> dict:
    """A service on edge: pinned there (a label filter), or only preferring it."""
    where = ("preferences: {site: edge}" if prefer_edge
             else "constraints: {labels: {tier: edge}}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    f"limits: {{memory: 16MiB}}\n{where}\n")
    m = load_manifest(path)
    (p,) = client.wait(name, client.deploy(m)["generation"], 1, 60)
    assert p["node"] == "edge"
    return p


def test_service_moves_live_with_its_state_and_keeps_answering(cluster, tmp_path):
    c, client = cluster
    path = tmp_path / "kv.yaml"
    path.write_text(f"name: mover\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    "limits: {memory: 16MiB}\n")
    m = load_manifest(path)
    (p,) = client.wait("mover", client.deploy(m)["generation"], 1, 60)
    src = p["node"]
    dst = "cloud" if src != "cloud" else "edge"
    assert client.invoke("mover", "add", b"5") == b"5"
    assert client.invoke("mover", "add", b"7") == b"12"
    assert client.invoke("mover", "hello", b"before") == b"ok"

    results: list[bytes] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def load() -> None:  # a steady stream of calls while it moves: each adds 1
        while not stop.is_set():
            try:
                results.append(client.invoke("mover", "add", b"1"))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    t = threading.Thread(target=load)
    t.start()
    try:
        wait_until(lambda: len(results) >= 5, 30, "calls before the move")
        summary = client.migrate("mover", dst)
        n = len(results)
        wait_until(lambda: len(results) >= n + 5, 30, "calls after the move")
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    assert summary.source == src and summary.target == dst
    assert summary.mode == "pre-copy" and summary.rounds >= 2  # rounds while serving + the last
    assert 0 < summary.downtime_s <= summary.total_s and summary.bytes_sent > 0
    assert summary.memory >= 64 << 10
    placed = client.app_placements("mover", 1)[0]
    assert placed["node"] == dst and placed["state"] == "running"
    # Every call was served exactly once, in order: the totals run 13, 14, ... without a gap.
    assert [int(r) for r in results] == list(range(13, 13 + len(results)))
    assert client.invoke("mover", "add", b"0") == str(12 + len(results)).encode()
    # Logs continue: one stream, from the source and then the target, nothing doubled.
    assert client.invoke("mover", "hello", b"after") == b"ok"
    chunks: list[dict] = []
    want = (b"hello from the service: before\n", b"hello from the service: after\n")
    wait_until(lambda: (chunks.clear(), client.logs("mover", chunks.append))
               and b"".join(x["data"] for x in chunks).count(b"hello") == 2, 10, "the logs")
    assert b"".join(x["data"] for x in chunks) == b"".join(want)
    assert [x["node"] for x in chunks] == [src, dst]
    client.stop("mover")


def test_move_to_a_node_that_fails_a_filter_is_refused_with_the_reason(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "pinned")
    with pytest.raises(MoveError, match="node cloud fails the labels filter"):
        client.migrate("pinned", "cloud")
    with pytest.raises(MoveError, match="already runs on edge"):
        client.migrate("pinned", "edge")
    r = subprocess.run([sys.executable, "-m", "foglayer.cli", "migrate", "pinned", "--to", "iot",
                        "--server", c.server.url, "--creds", str(c.creds("admin"))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "fails the labels filter" in r.stderr
    assert client.app_placements("pinned", 1)[0]["node"] == "edge"
    assert client.invoke("pinned", "add", b"2") == b"2"
    client.stop("pinned")


def test_a_target_killed_during_the_move_leaves_the_app_on_the_source(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "stays", prefer_edge=True)
    client.invoke("stays", "add", b"40")
    p = move_killing_the_target(c, client, "stays")
    assert p["node"] == "edge" and p["state"] == "running"
    assert client.invoke("stays", "add", b"2") == b"42"  # the source kept its state, serving
    assert any(e["kind"] == "move-failed" and "node iot did not" in e["message"]
               for e in client.events(50))
    client.stop("stays")
    wait_until(lambda: client.nodes()["iot"]["state"] == "ready", 60, "iot back")


def test_target_refuses_a_state_that_does_not_match_its_hash(cluster, tmp_path):
    """A forged stream, sent straight to a node as the controller would: refused, not used."""
    import secrets

    from foglayer.cluster._move import H_MOVE, MoveReply, MoveRequest
    from foglayer.cluster._protocol import H_CHUNK, decode, encode
    from foglayer.cluster._spec import decode_spec

    c, client = cluster
    p = deploy(client, tmp_path, "victim")
    spec = decode_spec(client.app("victim")["spec"])
    mid = secrets.token_hex(8)

    async def forge(nc) -> list[MoveReply]:
        async def ask(subject, data, headers=None):
            msg = await nc.request(subject, data, headers=headers, timeout=30)
            return decode(msg.data, MoveReply)

        # The node fetches the module for the instance it was told about: prepare on edge.
        prep = await ask("fog.cmd.edge.migrate", encode(MoveRequest(
            "prepare", mid, p["instance"], "victim", 0, p["generation"], spec)))
        data = await ask("fog.cmd.edge.mdata", b"\0" * 1000, {H_MOVE: mid, H_CHUNK: "0/1"})
        commit = await ask("fog.cmd.edge.migrate", encode(MoveRequest(
            "commit", mid, size=1000, sha256="0" * 64)))
        return [prep, data, commit]

    prep, data, commit = client.run(forge(client.client.nc))
    assert prep.ok and data.ok, (prep, data)
    assert not commit.ok and "does not match its SHA-256" in commit.error
    assert client.invoke("victim", "add", b"3") == b"3"  # the real one serves on
    client.stop("victim")


def deploy_journal(client, tmp_path: Path, name: str) -> None:
    """The journal service (a file kept open in its volume /data) on edge, 50 lines in it."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {PROGRAMS / 'cluster_journal.c'}\nkind: service\n"
                    "limits: {memory: 16MiB}\ndirs: [/data]\npreferences: {site: edge}\n")
    (p,) = client.wait(name, client.deploy(load_manifest(path))["generation"], 1, 60)
    assert p["node"] == "edge"
    for i in range(50):
        client.invoke(name, "append", f"line {i} before".encode())


def test_volumes_and_an_open_file_move_with_the_service_and_leave_the_source(cluster, tmp_path):
    """The journal file stays open across the move, at its offset, and the volume's files
    reach the target (pre-copied in changed blocks by hash, then settled). The source's copy
    of the volume goes once the move has committed: a later start there sees no stale files."""
    c, client = cluster
    deploy_journal(client, tmp_path, "journal")
    source = c.root / "nodes" / "edge" / "volumes" / "journal"
    assert list(source.rglob("journal.txt"))
    client.migrate("journal", "cloud")
    wait_until(lambda: not any(source.iterdir()), 10, "the source's volume removed")
    for i in range(5):
        client.invoke("journal", "append", f"line {i} after".encode())
    want = "".join(f"line {i} before\n" for i in range(50))
    want += "".join(f"line {i} after\n" for i in range(5))
    assert client.invoke("journal", "read").decode() == want
    on_target = list((c.root / "nodes" / "cloud" / "volumes" / "journal").rglob("journal.txt"))
    assert on_target and on_target[0].read_text() == want
    client.stop("journal")


def test_a_move_aborted_during_pre_copy_leaves_the_source_its_volume(cluster, tmp_path):
    c, client = cluster
    deploy_journal(client, tmp_path, "kept")
    want = "".join(f"line {i} before\n" for i in range(50))
    p = move_killing_the_target(c, client, "kept")
    assert p["node"] == "edge" and p["state"] == "running"
    on_source = list((c.root / "nodes" / "edge" / "volumes" / "kept").rglob("journal.txt"))
    assert on_source and on_source[0].read_text() == want
    client.invoke("kept", "append", b"after")
    assert client.invoke("kept", "read").decode() == want + "after\n"
    client.stop("kept")
    wait_until(lambda: client.nodes()["iot"]["state"] == "ready", 60, "iot back")


def test_drain_moves_services_off_live_and_uncordon_undoes_it(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "drained", prefer_edge=True)
    assert client.invoke("drained", "add", b"10") == b"10"
    seen: list[list[str]] = []
    try:
        client.drain("edge", seen.append, 120)
        p = client.app_placements("drained", 1)[0]
        assert p["node"] != "edge" and p["state"] == "running"
        assert client.invoke("drained", "add", b"1") == b"11"  # moved live: state kept
        assert seen[0] == ["drained.0"] and seen[-1] == []
        why = client.decision("drained")["replicas"]["0"]["why"]
        assert "node edge drained: moved live from edge" in why
        # Cordoned: a pinned app finds no node, and explain says why.
        (q,) = deploy_pending(client, tmp_path, "newcomer")
        rows = {r["node"]: r for r in client.decision("newcomer")["replicas"]["0"]["rows"]}
        assert "cordoned" in rows["edge"]["reason"]
    finally:
        client.cordon("edge", False)
    wait_until(lambda: client.app_placements("newcomer", 1)[0]["node"] == "edge", 30,
               "the pinned app placed on edge once uncordoned")
    client.stop("newcomer")
    client.stop("drained")


def deploy_pending(client, tmp_path: Path, name: str) -> list[dict]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    "limits: {memory: 16MiB}\nconstraints: {labels: {tier: edge}}\n")
    m = load_manifest(path)
    return client.wait(name, client.deploy(m)["generation"], 1, 60, states=("pending",))


def test_mobility_restart_is_never_moved_live(cluster, tmp_path):
    c, client = cluster
    path = tmp_path / "fixed.yaml"
    path.write_text(f"name: fixed\nmodule: {PROGRAMS / 'cluster_service.c'}\nkind: service\n"
                    "limits: {memory: 16MiB}\nmobility: restart\n")
    m = load_manifest(path)
    assert m.spec.mobility == "restart" and not m.spec.moves_live
    (p,) = client.wait("fixed", client.deploy(m)["generation"], 1, 60)
    other = "cloud" if p["node"] != "cloud" else "edge"
    with pytest.raises(MoveError, match="mobility: restart"):
        client.migrate("fixed", other)
    client.stop("fixed")
    cmd = tmp_path / "cmd.yaml"
    cmd.write_text(f"name: job\nmodule: {PROGRAMS / 'cluster_command.c'}\n")
    spec = load_manifest(cmd).spec
    assert not spec.moves_live and not spec.checkpointable  # commands restart by default


def test_a_source_killed_after_the_switch_leaves_the_target_owning_the_app(cluster, tmp_path):
    c, client = cluster
    deploy(client, tmp_path, "owned", prefer_edge=True)
    assert client.invoke("owned", "add", b"7") == b"7"
    s = client.migrate("owned", "cloud")
    placed = client.app_placements("owned", 1)[0]
    try:
        c.kill("node-edge")
        wait_until(lambda: client.nodes()["edge"]["state"] != "ready", 30, "edge lost")
        p = client.app_placements("owned", 1)[0]
        assert (p["node"], p["instance"], p["state"]) == ("cloud", placed["instance"], "running")
        assert s.source == "edge"
        assert client.invoke("owned", "add", b"1") == b"8"  # the one live copy, with its state
    finally:
        c.start_node("edge")
    wait_until(lambda: client.nodes()["edge"]["state"] == "ready", 60, "edge back")
    client.stop("owned")


def test_a_redeploy_that_changes_only_preferences_moves_the_service_live(cluster, tmp_path):
    c, client = cluster
    p0 = deploy(client, tmp_path, "follower", prefer_edge=True)
    assert client.invoke("follower", "add", b"5") == b"5"
    path = tmp_path / "follower.yaml"
    path.write_text(path.read_text().replace("preferences: {site: edge}",
                                             "preferences: {site: cloud}"))
    gen = client.deploy(load_manifest(path))["generation"]
    p = wait_until(lambda: (q := client.app_placements("follower", 1)[0])["node"] == "cloud"
                   and q["generation"] == gen and q, 60, "the move to cloud")
    assert p["instance"] != p0["instance"] and p["moved_from"] == "edge"
    assert client.invoke("follower", "add", b"1") == b"6"  # moved live, not restarted
    assert "changed its preferences: moved live from edge" in \
        client.decision("follower")["replicas"]["0"]["why"]
    client.stop("follower")


def test_a_target_that_never_confirms_leaves_the_source_serving(cluster, tmp_path):
    """The target hangs (SIGSTOP) mid-transfer: the step times out, the move fails, the source
    serves on with its state; the target, resumed, drops what it had prepared."""
    import signal

    c, client = cluster
    deploy(client, tmp_path, "patient", prefer_edge=True)
    client.invoke("patient", "add", b"30")
    target = c.procs["node-iot"]

    def hang(p) -> None:
        if "copying" in p.phase and not hung:
            hung.append(True)
            target.send_signal(signal.SIGSTOP)

    hung: list[bool] = []
    try:
        with pytest.raises(MoveError, match="node iot did not"):
            client.migrate("patient", "iot", hang)
        assert hung
        assert client.invoke("patient", "add", b"1") == b"31"  # served by the source
        p = client.app_placements("patient", 1)[0]
        assert p["node"] == "edge" and p["state"] == "running"
    finally:
        target.send_signal(signal.SIGCONT)
    wait_until(lambda: client.nodes()["iot"]["state"] == "ready", 60, "iot back")
    assert client.invoke("patient", "add", b"1") == b"32"
    client.stop("patient")


def test_removing_a_volume_never_follows_a_symlink_out(tmp_path):
    from foglayer.cluster.agent._move import remove_tree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    base = tmp_path / "volumes"
    root = base / "app" / "0"
    (root / "data").mkdir(parents=True)
    (root / "data" / "f.txt").write_text("stale")
    (root / "data" / "link").symlink_to(outside)
    remove_tree(root, base)
    assert not root.exists() and list((base / "app").iterdir()) == []
    (base / "other").symlink_to(outside)  # a symlink in its place: only the link goes
    remove_tree(base / "other", base)
    assert not (base / "other").exists() and (outside / "keep.txt").read_text() == "keep"
    (outside / "0").mkdir()
    (base / "app2").symlink_to(outside)  # a symlink above it: refused, nothing removed
    with pytest.raises(OSError, match="not a directory"):
        remove_tree(base / "app2" / "0", base)
    assert (outside / "0").is_dir() and (outside / "keep.txt").exists()
    with pytest.raises(OSError, match="not below"):
        remove_tree(base / ".." / "outside", base)
