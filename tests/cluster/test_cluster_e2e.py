"""The continuum end to end: a real nats-server, a controller and three node agents, each a
process of its own. Deploy a command and a service, invoke the service, read logs, see the
filters at work, and the errors a user gets."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime
from _continuum import running

from foglayer.cluster import (
    Continuum,
    NodeSpec,
    ServiceError,
    UnknownApp,
    load_manifest,
    wait_until,
)
from foglayer.errors import FogError
from foglayer.runtime import LimitExceeded, Trapped

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge"),
         NodeSpec("iot", "iot", ["--no-simd"])]
    with running(tmp_path_factory.mktemp("continuum"), nodes, timeout=60,
                 node_timeout=3.0) as (c, client):
        yield c, client


def manifest(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\n{text}")
    return p


def deploy(client, path: Path, timeout: float = 60.0) -> list[dict]:
    m = load_manifest(path)
    rec = client.deploy(m)
    return client.wait(m.name, rec["generation"], m.spec.replicas, timeout)


def test_nodes_register_their_capabilities(cluster):
    c, client = cluster
    nodes = client.nodes()
    assert set(nodes) == {"cloud", "edge", "iot"}
    caps = nodes["iot"]["caps"]
    for field in ("arch", "cpu_model", "cpus", "memory", "max_memory", "engine", "engine_version",
                  "features", "tee", "labels", "speed"):
        assert field in caps, field
    assert caps["tee"] == [] and caps["engine"] == "wasmtime"
    assert caps["labels"] == {"tier": "iot", "site": "iot"} and caps["max_memory"] == 64 << 20
    assert "simd" not in caps["features"] and "simd" in nodes["cloud"]["caps"]["features"]
    assert caps["speed"] < nodes["cloud"]["caps"]["speed"]  # the fuel rate throttles it


def test_command_app_runs_with_args_env_dirs_and_logs(cluster, tmp_path):
    c, client = cluster
    path = manifest(tmp_path, "hello", f"""module: {PROGRAMS / 'cluster_command.c'}
args: [one, two]
env: {{GREETING: bonjour}}
dirs: [/data]
constraints: {{labels: {{tier: edge}}}}
""")
    (p,) = deploy(client, path)
    assert p["node"] == "edge"
    p = wait_until(lambda: (q := client.app_placements("hello", 1)[0])["state"] == "exited" and q,
                   30, "the command to finish")
    assert p["exit_code"] == 0
    chunks = []
    wait_until(lambda: (chunks.clear(), client.logs("hello", chunks.append))
               and b"wrote /data/out.txt" in b"".join(x["data"] for x in chunks), 10, "the logs")
    out = b"".join(x["data"] for x in chunks if x["stream"] == "stdout").decode()
    err = b"".join(x["data"] for x in chunks if x["stream"] == "stderr").decode()
    assert "hello from cluster_command.wasm one two" in out or "one two" in out
    assert "GREETING=bonjour" in out and "a line on stderr" in err
    assert {x["node"] for x in chunks} == {"edge"}
    written = list((c.root / "nodes" / "edge" / "volumes" / "hello").rglob("out.txt"))
    assert written and written[0].read_text() == "written by the app\n"
    assert_private(c.root, written[0])
    # Exited with 0 under on-failure: it stays exited, not restarted.
    assert client.app_placements("hello", 1)[0]["restarts"] == 0
    client.stop("hello")
    wait_until(lambda: client.app_placements("hello", 1) == [None], 10, "the app to go")


def assert_private(root: Path, volume_file: Path) -> None:
    """Node volumes, cached modules and process logs are the user's alone (0700 / 0600)."""
    node = root / "nodes" / "edge"
    for d in [node, *(p for p in volume_file.parents if node in p.parents), node / "modules"]:
        assert d.stat().st_mode & 0o777 == 0o700, d
    modules = list((node / "modules").glob("*.wasm"))
    logs = list((root / "logs").glob("*.log"))
    assert modules and logs
    for f in (*modules, *logs):
        assert f.stat().st_mode & 0o777 == 0o600, f
    assert (root / "logs").stat().st_mode & 0o777 == 0o700


def test_failing_command_is_restarted_then_given_up(cluster, tmp_path):
    c, client = cluster
    path = manifest(tmp_path, "crashy", f"""module: {PROGRAMS / 'cluster_command.c'}
env: {{CODE: "3"}}
restart: on-failure
max_restarts: 2
""")
    deploy(client, path)
    p = wait_until(lambda: (q := client.app_placements("crashy", 1)[0]).get("gave_up") and q,
                   30, "the restarts to run out")
    assert p["restarts"] == 2 and p["state"] == "exited" and p["exit_code"] == 3
    client.stop("crashy")


@pytest.fixture(scope="module")
def service(cluster, tmp_path_factory):
    c, client = cluster
    d = tmp_path_factory.mktemp("svc")
    deploy(client, manifest(d, "svc", f"""module: {PROGRAMS / 'cluster_service.c'}
kind: service
limits: {{memory: 16MiB, timeout: 1}}
"""))
    return client


def test_service_keeps_state_between_calls(service):
    client = service
    assert client.invoke("svc", "add", b"5") == b"5"
    assert client.invoke("svc", "add", b"7") == b"12"
    big = os.urandom(300_000)
    assert client.invoke("svc", "echo", big) == big
    assert client.invoke("svc", "echo", b"") == b""


def test_service_errors(service):
    client = service
    with pytest.raises(ServiceError, match="svc.fail: this always fails"):
        client.invoke("svc", "fail")
    with pytest.raises(Trapped, match="svc.boom: trap in boom") as e:
        client.invoke("svc", "boom")
    assert not isinstance(e.value, LimitExceeded) and e.value.backtrace
    with pytest.raises(LimitExceeded, match="timeout"):
        client.invoke("svc", "spin")
    with pytest.raises(FogError, match="no function 'nope'"):
        client.invoke("svc", "nope")
    with pytest.raises(FogError, match="not a service function"):
        client.invoke("svc", "_initialize")
    with pytest.raises(FogError, match="invalid function name"):
        client.invoke("svc", "a.b")
    with pytest.raises(UnknownApp, match="no app named 'ghost'"):
        client.invoke("ghost", "add")
    # After a trap and a timeout the instance still serves, with its state.
    assert int(client.invoke("svc", "add", b"0")) >= 0


def test_a_service_that_exits_is_restarted(service):
    client = service
    before = client.app_placements("svc", 1)[0]
    with pytest.raises(Trapped, match="proc_exit"):
        client.invoke("svc", "quit")
    p = wait_until(lambda: (q := client.app_placements("svc", 1)[0])["state"] == "running"
                   and q["instance"] != before["instance"] and q, 30, "the restart")
    assert p["restarts"] == before["restarts"] + 1
    assert wait_until(lambda: client.invoke("svc", "add", b"1") == b"1", 10, "a fresh instance")


PLAIN = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))')
SIMD = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_start") '
                         '(drop (v128.const i32x4 1 2 3 4))))')


@pytest.mark.parametrize("name,constraints,filt", [
    ("need-arm", "constraints: {arch: aarch64}", "arch"),
    ("need-tee", "constraints: {tee: tpm}", "tee"),
    ("need-label", "constraints: {labels: {tier: moon}}", "labels"),
    ("need-mem", "limits: {memory: 16GiB}", "memory"),
])
def test_no_node_fits_and_explain_says_why(cluster, tmp_path, name, constraints, filt):
    c, client = cluster
    (tmp_path / "plain.wasm").write_bytes(bytes(PLAIN))
    (p,) = deploy(client, manifest(tmp_path, name, f"module: plain.wasm\n{constraints}\n"))
    assert p["state"] == "pending" and p["node"] is None
    d = client.decision(name)["replicas"]["0"]
    assert d["winner"] is None
    assert {r["node"]: r["filter"] for r in d["rows"]} == dict.fromkeys(("cloud", "edge", "iot"), filt)
    client.stop(name)


def test_the_feature_filter_keeps_simd_off_the_iot_node(cluster, tmp_path):
    c, client = cluster
    (tmp_path / "simd.wasm").write_bytes(bytes(SIMD))
    (p,) = deploy(client, manifest(tmp_path, "vec", "module: simd.wasm\n"
                                   "constraints: {labels: {tier: iot}}\n"))
    assert p["state"] == "pending"
    d = client.decision("vec")["replicas"]["0"]
    rows = {r["node"]: r for r in d["rows"]}
    assert rows["iot"]["filter"] == "features" and "simd" in rows["iot"]["reason"]
    assert rows["cloud"]["filter"] == "labels"
    client.stop("vec")


def fog(c: Continuum, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FOG_CREDS": str(c.creds("admin"))}
    return subprocess.run([sys.executable, "-m", "foglayer.cli", *args], capture_output=True,
                          env=env, input=input, timeout=120)


def test_fog_invokes_lists_logs_and_deploys_through_the_cli(cluster, service, tmp_path):
    c, client = cluster
    r = fog(c, "invoke", "svc", "echo", "hi there")
    assert r.returncode == 0 and r.stdout == b"hi there\n", r
    r = fog(c, "invoke", "svc", "echo", "-", input=b"from stdin")
    assert r.stdout == b"from stdin\n"
    r = fog(c, "nodes")
    assert r.returncode == 0 and all(n in r.stdout.decode() for n in ("cloud", "edge", "iot"))
    r = fog(c, "ps")
    assert r.returncode == 0 and "svc" in r.stdout.decode() and "running" in r.stdout.decode()
    r = fog(c, "explain", "svc")
    out = r.stdout.decode()
    assert r.returncode == 0 and "winner" in out and "capacity" in out, out
    r = fog(c, "invoke", "svc", "boom")
    assert r.returncode == 134 and b"fog: trap: svc.boom: trap in boom" in r.stderr, r
    r = fog(c, "invoke", "ghost", "f")
    assert r.returncode == 2 and r.stderr.decode().strip() == \
        "fog: error: no app named 'ghost' (`fog ps` lists the apps)"
    for cmd in (["explain", "ghost"], ["stop", "ghost"], ["logs", "ghost"]):
        r = fog(c, *cmd)
        assert r.returncode == 2 and b"no app named 'ghost'" in r.stderr, (cmd, r)
    bad = manifest(tmp_path, "bad", "module: x.wasm\nkind: daemon\n")
    r = fog(c, "deploy", str(bad))
    assert r.returncode == 2 and r.stderr.decode().strip() == \
        f"fog: error: {bad}: kind: must be one of command, service (got 'daemon')"
    client.invoke("svc", "hello", b"cli")
    r = fog(c, "logs", "svc")
    assert r.returncode == 0 and b"hello from the service: cli" in r.stdout, r
    # fog logs -f follows new output until Ctrl-C.
    env = {**os.environ, "FOG_CREDS": str(c.creds("admin"))}
    follow = subprocess.Popen([sys.executable, "-m", "foglayer.cli", "logs", "svc", "-f"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"service: followed" not in seen and time.monotonic() < deadline:
            client.invoke("svc", "hello", b"followed")
            ready, _, _ = select.select([follow.stdout], [], [], 0.5)
            if ready:
                seen += os.read(follow.stdout.fileno(), 65536)
        assert b"hello from the service: followed" in seen
        follow.send_signal(signal.SIGINT)
        assert follow.wait(15) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    # A deploy through the CLI waits for the placement and says where.
    path = manifest(tmp_path, "cli-app", f"module: {PROGRAMS / 'cluster_command.c'}\n")
    r = fog(c, "deploy", str(path))
    assert r.returncode == 0 and b"cli-app: deployed generation 1" in r.stdout, r
    assert b"cli-app.0:" in r.stdout
    r = fog(c, "deploy", str(path))
    assert b"unchanged (generation 1)" in r.stdout
    r = fog(c, "stop", "cli-app")
    assert r.returncode == 0 and b"stopping" in r.stdout
