"""The ``arm`` node profile: a node agent on an aarch64 Python (qemu user emulation in the
arm64 root) joins the continuum, says it is aarch64, and runs apps from aarch64 code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _programs import build, fog

from foglayer.cluster import Continuum, NodeSpec, load_manifest, wait_until

TIMEOUTS = {"node_timeout": 10.0, "lease_ttl": 3.0, "heartbeat": 0.5}
EM_AARCH64 = 183


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from foglayer.toolchain import arm_root

    arm_root()  # built once per machine, before the node's clock starts
    c = Continuum(tmp_path_factory.mktemp("continuum"),
                  [NodeSpec("cloud", "cloud"), NodeSpec("arm", "arm")], **TIMEOUTS)
    c.start()
    client = c.client()
    try:
        wait_until(lambda: sum(n["state"] == "ready" for n in client.nodes().values()) == 2,
                   120, f"two ready nodes; arm node log:\n{c.log_tail('node-arm')}")
        yield c, client
    finally:
        client.close()
        c.stop()


def test_arm_node_reports_aarch64_with_host_built_native_paths(cluster):
    """The root has no compiler: the host built the aarch64 WASI calls and dirty-page scan
    into its cache, and the arm node found and loaded them (not the Python fallbacks)."""
    c, client = cluster
    caps = wait_until(lambda: (k := client.nodes()["arm"]["caps"])["wasi_path"] and k, 120,
                      "the arm node's native paths")
    assert (caps["arch"], caps["wasi_path"], caps["dirty_scan"]) == \
        ("aarch64", "native", "native"), c.log_tail("node-arm")
    r = subprocess.run([sys.executable, "-m", "foglayer.cli", "nodes", "-o", "json",
                        "--server", c.server.url, "--creds", str(c.creds("admin"))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (arm,) = [n for n in json.loads(r.stdout)["items"] if n["name"] == "arm"]
    assert (arm["arch"], arm["wasi_path"], arm["dirty_scan"]) == ("aarch64", "native", "native")
    r = subprocess.run([sys.executable, "-m", "foglayer.cli", "nodes", "--server", c.server.url,
                        "--creds", str(c.creds("admin"))], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    row = next(ln for ln in r.stdout.splitlines() if ln.replace("│", " ").split()[:1] == ["arm"])
    assert "aarch64" in row, r.stdout


def test_command_pinned_to_aarch64_runs_there_from_aarch64_code(cluster, tmp_path):
    c, client = cluster
    wasm = build("snap_compute")
    path = tmp_path / "compute.yaml"
    path.write_text(f"name: compute\nmodule: {wasm}\nargs: ['4']\n"
                    "constraints: {arch: aarch64}\nrestart: never\n")
    m = load_manifest(path)
    rec = client.deploy(m)
    (p,) = client.wait("compute", rec["generation"], 1, 120)
    assert p["node"] == "arm"
    p = wait_until(lambda: (q := client.app_placements("compute", 1)[0])["state"] == "exited"
                   and q, 300, "the command to finish")
    assert p["exit_code"] == 3
    chunks: list[dict] = []
    want = fog("run", wasm, "4").stdout.encode()
    wait_until(lambda: (chunks.clear(), client.logs("compute", chunks.append))
               and b"".join(x["data"] for x in chunks if x["stream"] == "stdout") == want,
               30, "the same stdout as on x86-64")
    # The node's AOT cache lives in the root: Cranelift compiled this module for aarch64.
    from foglayer.toolchain import arm_root

    digest = __import__("hashlib").sha256(wasm.read_bytes()).hexdigest()
    entries = list(Path(arm_root().path, "root/.cache/foglayer/aot").glob(f"{digest}-*.cwasm"))
    assert entries
    blob = entries[0].read_bytes()
    elf = blob[blob.index(b"\x7fELF"):]
    assert int.from_bytes(elf[18:20], "little") == EM_AARCH64
    client.stop("compute")


def test_service_moves_x86_64_to_aarch64_and_back_with_its_state(cluster, tmp_path):
    """A live move across CPU architectures, twice: the counter never loses a step."""
    c, client = cluster
    programs = Path(__file__).resolve().parents[1] / "programs"
    path = tmp_path / "svc.yaml"
    path.write_text(f"name: hopper\nmodule: {programs / 'cluster_service.c'}\nkind: service\n"
                    "limits: {memory: 16MiB}\nconstraints: {arch: x86_64}\n")
    (p,) = client.wait("hopper", client.deploy(load_manifest(path))["generation"], 1, 60)
    assert p["node"] == "cloud"
    assert client.invoke("hopper", "add", b"20") == b"20"
    path.write_text(path.read_text().replace("constraints: {arch: x86_64}\n", ""))
    # (No redeploy: a move is checked against the filters of the spec it runs with.)
    with pytest.raises(Exception, match="arch"):
        client.migrate("hopper", "arm")
    client.stop("hopper")
    wait_until(lambda: client.app_placements("hopper", 1) == [None], 30, "hopper gone")
    (p,) = client.wait("hopper", client.deploy(load_manifest(path))["generation"], 1, 60)
    first = p["node"]
    other = "arm" if first == "cloud" else "cloud"
    assert client.invoke("hopper", "add", b"1") == b"1"
    there = client.migrate("hopper", other, timeout=300)
    assert there.target == other and there.mode == "pre-copy"
    assert client.invoke("hopper", "add", b"2") == b"3"
    back = client.migrate("hopper", first, timeout=300, stop_and_copy=True)
    assert back.target == first and back.mode == "stop-and-copy" and back.rounds == 1
    assert client.invoke("hopper", "add", b"3") == b"6"
    archs = {n: client.nodes()[n]["caps"]["arch"] for n in (first, other)}
    assert set(archs.values()) == {"x86_64", "aarch64"}
    client.stop("hopper")


def test_command_moves_x86_64_to_aarch64_and_back_mid_run_byte_identical(cluster, tmp_path):
    """A live command stops at a gate on each architecture and is moved on: its stdout (one
    log stream), its open file and its exit code are those of a run that never moved."""
    c, client = cluster
    wasm = build("cluster_mover")
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    (ref_dir / "go1").touch()
    (ref_dir / "go2").touch()
    args = ["5", "1", "3"]  # five steps, gates before steps 1 and 3
    ref = fog("run", "--dir", f"{ref_dir}:/data", wasm, *args)
    assert ref.returncode == 7, ref.stderr
    path = tmp_path / "hop.yaml"
    path.write_text(f"name: hop\nmodule: {wasm}\nargs: {args}\nmobility: live\n"
                    "restart: never\ndirs: [/data]\nlimits: {memory: 32MiB}\n"
                    "preferences: {site: cloud}\n")
    (p,) = client.wait("hop", client.deploy(load_manifest(path))["generation"], 1, 120)
    assert p["node"] == "cloud"

    def stdout() -> bytes:
        chunks: list[dict] = []
        client.logs("hop", chunks.append)
        return b"".join(x["data"] for x in chunks if x["stream"] == "stdout")

    def gate(node: str, n: int) -> None:
        (c.root / "nodes" / node / "volumes" / "hop" / "0" / "data" / f"go{n}").touch()

    wait_until(lambda: b"waiting at gate 1" in stdout(), 60, "gate 1")
    there = client.migrate("hop", "arm", timeout=300)
    assert there.target == "arm" and there.mode == "pre-copy"
    gate("arm", 1)
    wait_until(lambda: b"waiting at gate 2" in stdout(), 300, "gate 2, on aarch64")
    # Pre-copy from the arm node: its rounds scan changed pages with the host-built aarch64
    # scan (the stop-and-copy way is the service test's)
    back = client.migrate("hop", "cloud", timeout=300)
    assert back.source == "arm" and back.mode == "pre-copy"
    gate("cloud", 2)
    p = wait_until(lambda: (q := client.app_placements("hop", 1)[0])
                   and q["state"] in ("exited", "failed") and q, 120, "the end")
    assert (p["state"], p["exit_code"], p["node"]) == ("exited", 7, "cloud"), p["error"]
    wait_until(lambda: stdout() == ref.stdout.encode(), 30, "the whole output, once")
    out = c.root / "nodes" / "cloud" / "volumes" / "hop" / "0" / "data" / "out.txt"
    assert out.read_bytes() == (ref_dir / "out.txt").read_bytes()
    client.stop("hop")
