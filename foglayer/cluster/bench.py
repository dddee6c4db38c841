"""The continuum's benchmark: ``fog bench cluster`` (the code lives here, beside what it
measures: ``foglayer.bench`` never imports the cluster).

On a ``fog up`` continuum (a nats-server, two controllers, nodes cloud, edge and iot, each a
process, with ``fog up``'s default timeouts), it measures and prints side by side:

- deploy-to-running latency (``fog deploy`` until the replica runs), p50 and p99, over 100 apps;
- ``fog invoke`` round trip against a bare NATS request-reply on the same server;
- what ``snapshots: after-invoke`` adds to a call (kv put and get, p50 and p99, without/with);
- failover: ``kill -9`` of the node running an app, until the app runs elsewhere;
- takeover: ``kill -9`` of the leading controller, until the standby holds the lease;
- the scheduler alone: decisions per second with 1,000 simulated nodes and 10,000 apps.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from foglayer.cluster._lease import KEY
from foglayer.cluster._manifest import BASELINE, FEATURES, load
from foglayer.cluster._scheduler import NodeView, passes, schedule
from foglayer.cluster._spec import AppSpec, decode_spec
from foglayer.cluster._sync import wait_until
from foglayer.cluster._up import Continuum, NodeSpec
from foglayer.examples import EXAMPLES


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _manifest(d: Path, name: str, extra: str = "", limits: str = "{memory: 4MiB}") -> Path:
    p = d / f"{name}.yaml"
    p.write_text(f"name: {name}\nmodule: {EXAMPLES / 'kvstore.c'}\nkind: service\n"
                 f"limits: {limits}\n{extra}")
    return p


def _leader(client) -> str | None:
    try:
        entry = client.run(client.client.kv["fog-leader"].get(KEY))
        return json.loads(entry.value)["holder"] if entry.value else None
    except Exception:  # noqa: BLE001
        return None


def kill_node(c, client, app: str, timeout: float) -> tuple[str, dict, float]:
    """Kill -9 the node running ``app`` (replica 0); (the node, the placement that runs it
    elsewhere, seconds from the kill until it ran there)."""
    victim = client.app_placements(app, 1)[0]["node"]
    t_kill = time.time()
    c.kill(f"node-{victim}")
    p = wait_until(lambda: (q := client.app_placements(app, 1)[0])["state"] == "running"
                   and q["node"] != victim and q, timeout, f"{app} to move")
    return victim, p, p["running_at"] - t_kill


def kill_leader(c, client) -> tuple[str, str, float]:
    """Kill -9 the leading controller; (killed, new leader, seconds until the new one leads)."""
    lead = wait_until(lambda: _leader(client), 30, "a leader")
    t_kill = time.time()
    c.kill(lead)
    new = wait_until(lambda: (h := _leader(client)) and h != lead and h, 60, "a new leader")
    return lead, new, time.time() - t_kill


_ECHO = """
import asyncio, json, sys
from foglayer.cluster._bus import Creds, connect
async def main():
    nc = await connect(creds=Creds.load(sys.argv[1]))
    async def cb(msg):
        await nc.publish(msg.reply, msg.data)
    await nc.subscribe("bench.echo", cb=cb)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def bare_rtt(c: Continuum, client, n: int) -> list[float]:
    """Request-reply to an echo responder in its own process (as a node is), same server."""
    proc = subprocess.Popen([sys.executable, "-c", _ECHO, str(c.creds("controller"))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()

        async def go() -> list[float]:
            nc = client.client.nc
            out = []
            for _ in range(50):
                await nc.request("bench.echo", b"name", timeout=5)
            for _ in range(n):
                t = time.perf_counter()
                await nc.request("bench.echo", b"name", timeout=5)
                out.append(time.perf_counter() - t)
            return out

        return client.run(go(), timeout=600)
    finally:
        proc.kill()
        proc.wait()


def invoke_rtt(client, app: str, n: int, function: str = "get",
               payload=lambda i: b"name") -> list[float]:
    """``n`` timed calls of ``function`` (payload ``payload(i)``) after 50 untimed ones."""
    async def go() -> list[float]:
        cl = client.client
        out = []
        for i in range(50):
            await cl.invoke(app, function, payload(n + i))
        for i in range(n):
            t = time.perf_counter()
            await cl.invoke(app, function, payload(i))
            out.append(time.perf_counter() - t)
        return out

    return client.run(go(), timeout=600)


def durable_rtt(client, d: Path, n: int) -> list[tuple[str, str]]:
    """What ``snapshots: after-invoke`` adds to a call: kv put (a write, new keys) and get,
    without and with it, on the same node (edge)."""
    m = load(_manifest(d, "kvs", "snapshots: after-invoke\npreferences: {site: edge}\n"))
    client.wait("kvs", client.deploy(m)["generation"], 1, 60, states=("running",))
    rows = []
    for function, payload in (("put", lambda i: b"key%d=value-%d" % (i, i)),
                              ("get", lambda i: b"key%d" % (i % 50))):
        plain = invoke_rtt(client, "kv", n, function, payload)
        durable = invoke_rtt(client, "kvs", n, function, payload)
        rows.append((f"kv {function} p50 / p99: plain | snapshots: after-invoke",
                     f"{1e6 * pct(plain, 50):.0f} / {1e6 * pct(plain, 99):.0f} µs | "
                     f"{1e6 * pct(durable, 50):.0f} / {1e6 * pct(durable, 99):.0f} µs "
                     f"(+{1e6 * (pct(durable, 50) - pct(plain, 50)):.0f} µs p50)"))
    client.stop("kvs")
    return rows


def _sim_nodes(rng: random.Random, n_nodes: int) -> list[NodeView]:
    nodes = []
    for i in range(n_nodes):
        tier = rng.choice(["cloud", "edge", "iot"])
        tee = rng.choice([[], [], [], ["tpm"]])
        nodes.append(NodeView(f"n{i:05d}", {
            "arch": rng.choice(["x86_64", "x86_64", "aarch64"]),
            "max_memory": {"cloud": 8192, "edge": 1024, "iot": 64}[tier] << 20,
            "speed": rng.uniform(1e8, 2e9), "features": [*BASELINE, *FEATURES],
            "tee": tee,
            "labels": {"tier": tier, "site": f"site-{i % 50}"},
            "latency": {f"site-{(i + k) % 50}": rng.uniform(1, 80) for k in range(3)}},
            trusted=bool(tee)))  # (TEE apps go to trusted nodes only)
    return nodes


def _sim_spec(rng: random.Random, i: int) -> AppSpec:
    return decode_spec({"name": f"app{i}", "limits": {"memory": rng.choice([4, 16, 32]) << 20},
            "constraints": {"labels": rng.choice([{}, {}, {"tier": "edge"}]), "features": [],
                            "tee": rng.choice([None, None, None, "any"]),
                            "arch": rng.choice([None, None, "x86_64"]), "min_memory": None},
            "preferences": rng.choice([{}, {"site": f"site-{rng.randrange(50)}"},
                                       {"low_latency_to": f"site-{rng.randrange(50)}"}]),
            "initial_memory": 0})


@dataclass
class SchedulerRun:
    """Decisions per second on one core, decision latency, and the placements' outcome."""

    rate: float
    p50: float
    p99: float
    placed: int
    pending: int
    violations: int  # decisions on a node that fails a filter: must be 0


def scheduler_rate(n_nodes: int, n_apps: int, seed: int = 1) -> SchedulerRun:
    """Place ``n_apps`` simulated apps on ``n_nodes`` simulated nodes, one decision each."""
    rng = random.Random(seed)
    nodes = _sim_nodes(rng, n_nodes)
    by_name = {n.name: n for n in nodes}
    lat: list[float] = []
    placed = pending = violations = 0
    start = 0
    t0 = time.perf_counter()
    for i in range(n_apps):
        spec = _sim_spec(rng, i)
        t = time.perf_counter()
        d = schedule(spec, nodes, start=start)
        start += d.examined
        lat.append(time.perf_counter() - t)
        if d.winner is None:
            pending += 1
            continue
        placed += 1
        violations += not passes(spec, by_name[d.winner])
        by_name[d.winner].used_memory += spec.memory
        by_name[d.winner].apps.add(spec.name)
    rate = n_apps / (time.perf_counter() - t0)
    return SchedulerRun(rate, pct(lat, 50), pct(lat, 99), placed, pending, violations)


def run(apps: int = 100, invokes: int = 1000, sim_nodes: int = 10000,
        sim_apps: int = 100000) -> None:
    """Run the whole benchmark and print its table (``fog bench cluster``)."""
    args = argparse.Namespace(apps=apps, invokes=invokes, sim_nodes=sim_nodes, sim_apps=sim_apps)
    results: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory(prefix="fog-bench-") as tmp:
        d = Path(tmp)
        say("== starting a continuum (fog up's profiles and timeouts; two controllers)")
        c = Continuum(d / "continuum", [NodeSpec(n, n) for n in ("cloud", "edge", "iot")],
                      controllers=2)
        c.start()
        client = c.client("fog-bench")
        try:
            c.wait_ready(client)
            say(f"== deploy-to-running over {args.apps} apps (each: upload, desired state, "
                "schedule, fetch, compile, instantiate)")
            lat, ctl = [], []
            first = None
            for i in range(args.apps):
                m = load(_manifest(d, f"app{i:03d}"))
                t = time.perf_counter()
                rec = client.deploy(m)
                (p,) = client.wait(m.name, rec["generation"], 1, 60, states=("running",))
                dt = time.perf_counter() - t
                if first is None:
                    first = dt  # the first one also compiles the module
                else:
                    lat.append(dt)
                ctl.append(p["running_at"] - p["scheduled_at"])
                if (i + 1) % 20 == 0:
                    say(f"   {i + 1}/{args.apps}")
            results.append(("deploy-to-running p50 / p99",
                            f"{1e3 * pct(lat, 50):.1f} / {1e3 * pct(lat, 99):.1f} ms "
                            f"(first, with the compile: {1e3 * (first or 0):.0f} ms)"))
            results.append(("  of which placement-to-running p50 / p99",
                            f"{1e3 * pct(ctl, 50):.1f} / {1e3 * pct(ctl, 99):.1f} ms"))
            for i in range(args.apps):
                client.stop(f"app{i:03d}")
            wait_until(lambda: not client.placements(), 60, "the apps to go")

            say(f"== invoke round trip, {args.invokes} calls, against bare NATS request-reply")
            m = load(_manifest(d, "kv", "preferences: {site: edge}\n"))
            rec = client.deploy(m)
            client.wait("kv", rec["generation"], 1, 60, states=("running",))
            client.invoke("kv", "put", b"name=ada")
            bare = bare_rtt(c, client, args.invokes)
            inv = invoke_rtt(client, "kv", args.invokes)
            results.append(("bare NATS request-reply p50 / p99",
                            f"{1e6 * pct(bare, 50):.0f} / {1e6 * pct(bare, 99):.0f} µs"))
            results.append(("fog invoke (kv get) p50 / p99",
                            f"{1e6 * pct(inv, 50):.0f} / {1e6 * pct(inv, 99):.0f} µs"))
            results.append(("  invoke overhead over bare NATS (p50)",
                            f"{1e6 * (pct(inv, 50) - pct(bare, 50)):.0f} µs "
                            f"({pct(inv, 50) / pct(bare, 50):.2f}x)"))
            say(f"== durable services: {args.invokes} calls without and with "
                "snapshots: after-invoke")
            results.extend(durable_rtt(client, d, args.invokes))

            say("== failover: kill -9 the node running kv")
            victim, p, took = kill_node(c, client, "kv", 60)
            results.append((f"failover ({victim} killed -> kv running on {p['node']})",
                            f"{took:.2f} s after kill -9 "
                            f"(node timeout {c.node_timeout:g} s); "
                            f"{1e3 * (p['running_at'] - p['lost_at']):.0f} ms after the loss was detected"))

            say("== takeover: kill -9 the leading controller")
            lead, new, took = kill_leader(c, client)
            m = load(_manifest(d, "after"))
            t = time.perf_counter()
            rec = client.deploy(m)
            client.wait("after", rec["generation"], 1, 60, states=("running",))
            results.append((f"takeover ({lead} killed -> {new} leads)",
                            f"{took:.2f} s (lease ttl {c.lease_ttl:g} s); the next deploy ran in "
                            f"{1e3 * (time.perf_counter() - t):.0f} ms"))
        finally:
            client.close()
            c.stop()

    results += scheduler_rows(args.sim_nodes, args.sim_apps)
    print_table("foglayer continuum benchmark (one machine, every component a process)", results)


def scheduler_rows(sim_nodes: int, sim_apps: int) -> list[tuple[str, str]]:
    """The scheduler alone (the controller's full scan), beside Nomad's and Kubernetes' figures."""
    apps = min(sim_apps, 2000)
    say(f"== scheduler alone: {sim_nodes} simulated nodes, {apps} apps")
    r = scheduler_rate(sim_nodes, apps)
    rows = [(f"scheduler (full scan), {sim_nodes} nodes / {apps} apps",
             f"{r.rate:,.0f} decisions/s, p50 {1e6 * r.p50:.0f} µs, p99 "
             f"{1e6 * r.p99:.0f} µs ({r.placed} placed, {r.pending} pending, "
             f"{r.violations} on a node failing a filter)")]
    rows.append(("  for reference", "Nomad C1M ~3,750 placements/s (5 servers); "
                                    "Kubernetes scheduler 100 pods/s at 5,000 nodes"))
    return rows


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    from foglayer._host import cpu_model

    width = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")
    print(f"  machine: {cpu_model()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="fog bench cluster", description=__doc__.split("\n")[0])
    ap.add_argument("--apps", type=int, default=100, help="apps to deploy (default 100)")
    ap.add_argument("--invokes", type=int, default=1000, help="invocations to time (default 1000)")
    ap.add_argument("--sim-nodes", type=int, default=10000)
    ap.add_argument("--sim-apps", type=int, default=100000)
    a = ap.parse_args(argv)
    run(a.apps, a.invokes, a.sim_nodes, a.sim_apps)


if __name__ == "__main__":
    main()


def attested_deploys(apps: int = 20) -> list[tuple[str, int, float, float]]:
    """Deploy-to-running with and without attestation, interleaved on one continuum of sim
    nodes (the dev policy): a plain app, then one with ``tee: sim`` and a secret (attested for
    its module, the secret released); then the data key of a sealed snapshot (``fog run
    --seal``'s handshake from a process on the node: connect with its credentials, challenge,
    sim evidence, appraisal, release), new and unwrapped for a restore. Rows: (what, runs,
    p50 ms, p99 ms)."""
    with tempfile.TemporaryDirectory(prefix="fog-bench-attest-") as tmp:
        d = Path(tmp)
        c = Continuum(d / "continuum", [NodeSpec("edge", "edge")], tee="sim")
        c.start()
        client = c.client("fog-bench")
        try:
            c.wait_ready(client)
            client.put_secret("bench_secret", os.urandom(32))
            times: dict[str, list[float]] = {"plain": [], "attested": []}
            for i in range(apps + 1):
                for kind, extra in (("plain", ""), ("attested", "constraints: {tee: sim}\n"
                                                     "secrets: [bench_secret]\n")):
                    m = load(_manifest(d, f"{kind[0]}{i:03d}", extra))
                    t = time.perf_counter()
                    rec = client.deploy(m)
                    client.wait(m.name, rec["generation"], 1, 60, states=("running",))
                    if i:  # the first round also compiles the module
                        times[kind].append(time.perf_counter() - t)
                    client.stop(m.name)
            rows = [(f"deploy-to-running, {'with' if k == 'attested' else 'without'} "
                     "attestation (sim)", len(v), 1e3 * pct(v, 50), 1e3 * pct(v, 99))
                    for k, v in times.items()]
            return rows + _sealing_keys(d / "continuum" / "nodes" / "edge", max(2, apps))
        finally:
            client.close()
            c.stop()


def _sealing_keys(node_dir: Path, runs: int) -> list[tuple[str, int, float, float]]:
    """The sealed-snapshot data key over the bus, as ``fog run --seal`` / ``fog restore`` get
    it from a process on the node."""
    from foglayer.cluster._sealing import _data_key

    module = hashlib.sha256(b"bench snapshot module").hexdigest()
    times: dict[str, list[float]] = {"seal": [], "restore": []}
    for _ in range(runs):
        t = time.perf_counter()
        _, header, _ = _data_key(module, node_dir=node_dir)
        times["seal"].append(time.perf_counter() - t)
        t = time.perf_counter()
        _data_key(module, wrapped=header.wrapped, node_dir=node_dir)
        times["restore"].append(time.perf_counter() - t)
    return [(f"sealed snapshot data key, {k} (sim, over the bus)", len(v), 1e3 * pct(v, 50),
             1e3 * pct(v, 99)) for k, v in times.items()]
