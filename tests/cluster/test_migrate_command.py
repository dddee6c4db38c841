"""Live moves of a running command (``mobility: live``): a real nats-server, a controller and
node agents as processes of their own, a real C program. The command moved mid-run ends
byte-identical to a run that never moved: stdout (one log stream), its open file, its exit
code."""

from __future__ import annotations

from pathlib import Path

import pytest
from _continuum import move_killing_the_target, running
from _programs import build, fog

from foglayer.cluster import MoveError, NodeSpec, load_manifest, wait_until

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
STEPS, GATE = "12", "5"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge"), NodeSpec("iot", "iot")]
    with running(tmp_path_factory.mktemp("continuum"), nodes, timeout=60,
                 node_timeout=3.0) as (c, client):
        yield c, client


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The run that never moved: stdout, the file it wrote, the exit code."""
    wasm = build("cluster_mover")
    d = tmp_path_factory.mktemp("reference")
    (d / "go1").touch()
    r = fog("run", "--dir", f"{d}:/data", wasm, STEPS, GATE)
    return wasm, r.stdout.encode(), (d / "out.txt").read_bytes(), r.returncode


def stdout_of(client, app: str) -> bytes:
    chunks: list[dict] = []
    client.logs(app, chunks.append)
    return b"".join(x["data"] for x in chunks if x["stream"] == "stdout")


def deploy(client, tmp_path: Path, name: str, wasm: Path, extra: str = "") -> dict:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {wasm}\nargs: ['{STEPS}', '{GATE}']\n{extra}"
                    "mobility: live\nrestart: never\ndirs: [/data]\nlimits: {memory: 32MiB}\n"
                    "preferences: {site: edge}\n")
    m = load_manifest(path)
    assert m.spec.checkpointable and m.spec.digest != __import__("hashlib").sha256(
        wasm.read_bytes()).hexdigest()  # it runs the checkpointable rewrite
    (p,) = client.wait(name, client.deploy(m)["generation"], 1, 60)
    assert p["node"] == "edge"
    wait_until(lambda: b"waiting at gate 1" in stdout_of(client, name), 60, "the gate")
    return p


def release(c, client, node: str, name: str) -> dict:
    """Let the command past its gate wherever it runs now; its final placement."""
    (c.root / "nodes" / node / "volumes" / name / "0" / "data" / "go1").touch()
    return wait_until(lambda: (q := client.app_placements(name, 1)[0])
                      and q["state"] in ("exited", "failed") and q, 60, f"{name} to end")


def test_command_moved_mid_run_ends_byte_identical_to_one_that_never_moved(
        cluster, reference, tmp_path):
    c, client = cluster
    wasm, ref_out, ref_file, ref_code = reference
    assert ref_code == 7 and ref_out.count(b"\n") == int(STEPS) + 2
    p0 = deploy(client, tmp_path, "walker", wasm)
    phases: list[str] = []
    s = client.migrate("walker", "cloud", lambda p: phases.append(p.phase))
    assert (s.source, s.target, s.mode) == ("edge", "cloud", "pre-copy") and s.rounds >= 2
    assert 0 < s.downtime_s <= s.total_s and s.bytes_sent > 0 and s.memory >= 2 << 20
    assert s.switch_s > 0  # its last instruction on edge to its first on cloud, measured
    p = client.app_placements("walker", 1)[0]
    assert p["node"] == "cloud" and p["instance"] != p0["instance"] and p["state"] == "running"
    p = release(c, client, "cloud", "walker")
    assert (p["state"], p["exit_code"], p["node"]) == ("exited", ref_code, "cloud"), p["error"]
    wait_until(lambda: stdout_of(client, "walker").endswith(b"done: " + ref_out.split(
        b"done: ")[1]), 30, "the last log line")
    assert stdout_of(client, "walker") == ref_out  # one stream: nothing lost or doubled
    out = c.root / "nodes" / "cloud" / "volumes" / "walker" / "0" / "data" / "out.txt"
    assert out.read_bytes() == ref_file  # the open file went on at its offset
    client.stop("walker")


def test_output_written_while_a_command_moves_arrives_once_and_in_order(
        cluster, reference, tmp_path):
    """It prints a numbered line every 2 ms while it waits, and moves meanwhile: the log
    stream has every number once, in order, from the source and then from the target."""
    c, client = cluster
    wasm, ref_out, _ref_file, ref_code = reference
    deploy(client, tmp_path, "ticker", wasm, "env: {TICKS: '1'}\n")
    wait_until(lambda: stdout_of(client, "ticker").count(b"tick") >= 20, 60, "ticks")
    client.migrate("ticker", "cloud")
    n = stdout_of(client, "ticker").count(b"tick")
    wait_until(lambda: stdout_of(client, "ticker").count(b"tick") >= n + 20, 60, "ticks there")
    p = release(c, client, "cloud", "ticker")
    assert (p["state"], p["exit_code"]) == ("exited", ref_code), p["error"]
    chunks: list[dict] = []
    wait_until(lambda: (chunks.clear(), client.logs("ticker", chunks.append))
               and b"".join(x["data"] for x in chunks).endswith(ref_out[-30:]), 30, "the end")
    out = b"".join(x["data"] for x in chunks if x["stream"] == "stdout")
    lines = out.splitlines(keepends=True)
    ticks = [int(ln.split()[1]) for ln in lines if ln.startswith(b"tick ")]
    assert ticks == list(range(len(ticks))) and len(ticks) >= n + 20  # none lost or doubled
    assert b"".join(ln for ln in lines if not ln.startswith(b"tick ")) == ref_out
    nodes = [x["node"] for x in chunks if x["stream"] == "stdout"]
    assert nodes[0] == "edge" and nodes[-1] == "cloud" and nodes == sorted(
        nodes, key=("edge", "cloud").index)  # the source's output, then the target's
    client.stop("ticker")


def test_a_target_killed_during_a_command_precopy_leaves_it_running_on_the_source(
        cluster, reference, tmp_path):
    c, client = cluster
    wasm, ref_out, ref_file, ref_code = reference
    deploy(client, tmp_path, "stayer", wasm)
    p = move_killing_the_target(c, client, "stayer")
    assert p["node"] == "edge" and p["state"] == "running"
    assert any(e["kind"] == "move-failed" and "node iot did not" in e["message"]
               for e in client.events(50))
    p = release(c, client, "edge", "stayer")  # it ran on at the source, as if nothing happened
    assert (p["state"], p["exit_code"]) == ("exited", ref_code)
    wait_until(lambda: stdout_of(client, "stayer") == ref_out, 30, "the whole output")
    out = c.root / "nodes" / "edge" / "volumes" / "stayer" / "0" / "data" / "out.txt"
    assert out.read_bytes() == ref_file
    client.stop("stayer")
    wait_until(lambda: client.nodes()["iot"]["state"] == "ready", 60, "iot back")


def test_a_target_killed_after_the_freeze_lets_the_halted_command_run_on(
        cluster, reference, tmp_path):
    """The source had halted the command (its stack unwound) when the target died: the
    failed move rewinds it there, and it ends as if it had never stopped."""
    c, client = cluster
    wasm, ref_out, ref_file, ref_code = reference
    deploy(client, tmp_path, "resumer", wasm)
    phases: list[str] = []

    def kill_target(p) -> None:  # -9 once the source is frozen and the state flows
        phases.append(p.phase)
        if p.phase == "copying the state" and c.procs["node-iot"].poll() is None:
            c.kill("node-iot")

    try:
        with pytest.raises(MoveError, match="node iot"):
            client.migrate("resumer", "iot", kill_target)
    finally:
        c.start_node("iot")
    assert "freezing the source" in phases
    p = client.app_placements("resumer", 1)[0]
    assert p["node"] == "edge" and p["state"] == "running"
    p = release(c, client, "edge", "resumer")
    assert (p["state"], p["exit_code"]) == ("exited", ref_code), p["error"]
    wait_until(lambda: stdout_of(client, "resumer") == ref_out, 30, "the whole output, once")
    out = c.root / "nodes" / "edge" / "volumes" / "resumer" / "0" / "data" / "out.txt"
    assert out.read_bytes() == ref_file
    client.stop("resumer")
    wait_until(lambda: client.nodes()["iot"]["state"] == "ready", 60, "iot back")


def test_drain_moves_a_live_command_off_live(cluster, reference, tmp_path):
    c, client = cluster
    wasm, ref_out, ref_file, ref_code = reference
    p0 = deploy(client, tmp_path, "drifter", wasm)
    try:
        client.drain("edge", lambda _: None, 120)
        p = client.app_placements("drifter", 1)[0]
        assert p["node"] != "edge" and p["moved_from"] == "edge" and p["state"] == "running"
        assert p["restarts"] == p0["restarts"]  # moved, not restarted
        wait_until(lambda: "node edge drained: moved live from edge" in
                   client.decision("drifter")["replicas"]["0"]["why"], 30,
                   "the decision to say why")  # (written once the source let go)
    finally:
        client.cordon("edge", False)
    p = release(c, client, p["node"], "drifter")
    assert (p["state"], p["exit_code"]) == ("exited", ref_code), p["error"]
    wait_until(lambda: stdout_of(client, "drifter") == ref_out, 30, "the whole output, once")
    client.stop("drifter")


def test_a_redeploy_that_changes_only_preferences_moves_the_command_live(
        cluster, reference, tmp_path):
    c, client = cluster
    wasm, ref_out, ref_file, ref_code = reference
    p0 = deploy(client, tmp_path, "follower", wasm)
    path = tmp_path / "follower.yaml"
    path.write_text(path.read_text().replace("preferences: {site: edge}",
                                             "preferences: {site: cloud}"))
    gen = client.deploy(load_manifest(path))["generation"]
    try:
        p = wait_until(lambda: (q := client.app_placements("follower", 1)[0])["node"] == "cloud"
                       and q["generation"] == gen and q, 60, "the move to cloud")
    except TimeoutError as e:  # what the controller did meanwhile, to see why
        raise AssertionError(f"{e}: {client.app_placements('follower', 1)}; "
                             f"{[x['message'] for x in client.events(30)]}") from None
    assert p["instance"] != p0["instance"] and p["moved_from"] == "edge"
    assert p["restarts"] == p0["restarts"]  # moved live, not restarted
    p = release(c, client, "cloud", "follower")
    assert (p["state"], p["exit_code"]) == ("exited", ref_code), p["error"]
    wait_until(lambda: stdout_of(client, "follower") == ref_out, 30, "the whole output, once")
    client.stop("follower")
