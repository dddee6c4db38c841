"""``fog bench migrate``: live moves of a service under load, pre-copy against stop-and-copy,
measured side by side in one run (the code lives beside what it measures: ``foglayer.bench``
never imports the cluster).

A ``fog up`` continuum (nodes cloud and edge, and with ``--arch`` the emulated ``arm`` node)
runs ``bench_migrate.c``: ``--state`` MiB of incompressible state, one 64 KiB page of it
rewritten by every call. One client thread calls it back to back the whole time. Each move
goes to the other node, alternating the modes; for each mode it reports medians of total
time, downtime (source frozen until the target serves), rounds, bytes sent against the
memory size, and the latency of the calls made during the moves (p50, p99). Every call
returns its sequence number: a gap is a lost call, a repeat a doubled one.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from foglayer.cluster._manifest import load
from foglayer.cluster._sync import wait_until
from foglayer.cluster._up import Continuum, NodeSpec
from foglayer.cluster.bench import pct, say

SOURCE = Path(__file__).with_name("bench_migrate.c")
MODES = ("pre-copy", "stop-and-copy")


class Load:
    """Back-to-back calls of ``touch`` from one thread: (start, latency, number) each."""

    def __init__(self, client, app: str) -> None:
        self.client, self.app = client, app
        self.calls: list[tuple[float, float, int]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.perf_counter()
            try:
                n = int(self.client.invoke(self.app, "touch", b"", 60))
            except Exception as e:  # noqa: BLE001 - counted: a lost call
                self.errors.append(str(e))
                continue
            self.calls.append((t, time.perf_counter() - t, n))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)

    def during(self, t0: float, t1: float) -> list[float]:
        return [lat for t, lat, _ in self.calls if t0 <= t <= t1]

    def lost_and_doubled(self) -> tuple[int, int]:
        numbers = [n for _, _, n in self.calls]
        doubled = len(numbers) - len(set(numbers))
        lost = (max(numbers) - min(numbers) + 1 - len(set(numbers))) if numbers else 0
        return lost + len(self.errors), doubled


def _move(client, load: Load, to: str, mode: str) -> dict:
    t0 = time.perf_counter()
    s = client.migrate("mig", to, None, 600, mode == "stop-and-copy")
    t1 = time.perf_counter()
    lat = load.during(t0, t1)
    return {"mode": s.mode, "total": s.total_s, "downtime": s.downtime_s, "rounds": s.rounds,
            "sent": s.bytes_sent, "memory": s.memory, "source": s.source, "target": s.target,
            "p50": pct(lat, 50), "p99": pct(lat, 99), "calls": len(lat)}


def run(state: int = 16, runs: int = 3, arch: bool = False) -> None:
    """Run the benchmark and print its table (``fog bench migrate``)."""
    from rich.console import Console
    from rich.table import Table

    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")]
    if arch:
        from foglayer.toolchain import arm_root

        arm_root()  # built once per machine (minutes), before the clock starts
        nodes.append(NodeSpec("arm", "arm"))
    memory = max(32, 2 * state + 16)
    rows: list[tuple[str, dict]] = []
    with tempfile.TemporaryDirectory(prefix="fog-bench-") as tmp:
        d = Path(tmp)
        say(f"== a continuum: nodes {', '.join(n.name for n in nodes)}")
        c = Continuum(d / "continuum", nodes)
        c.start()
        client = c.client("fog-bench-migrate")
        try:
            wait_until(lambda: sum(n["state"] == "ready" for n in client.nodes().values())
                       == len(nodes), 300, "the nodes")
            path = d / "mig.yaml"
            path.write_text(f"name: mig\nmodule: {SOURCE}\nkind: service\n"
                            f"limits: {{memory: {memory}MiB, timeout: 60}}\n"
                            "preferences: {site: cloud}\n")
            m = load(path)
            (p,) = client.wait("mig", client.deploy(m)["generation"], 1, 120)
            client.invoke("mig", "fill", str(state).encode(), 120)
            say(f"== {state} MiB of state on {p['node']}; a client calls it back to back "
                f"(each call rewrites a 64 KiB page); {runs} moves per mode")
            here = p["node"]
            with Load(client, "mig") as ld:
                wait_until(lambda: len(ld.calls) >= 20, 60, "the load")
                for i in range(runs):
                    for mode in MODES:
                        to = "edge" if here == "cloud" else "cloud"
                        r = _move(client, ld, to, mode)
                        here = to
                        rows.append((f"{state} MiB service, x86-64 -> x86-64", r))
                        say(f"   {mode}: {r['source']} -> {r['target']} downtime "
                            f"{1e3 * r['downtime']:.0f} ms, {r['rounds']} rounds "
                            f"({i + 1}/{runs})")
                if arch:
                    for mode in MODES:
                        for to in ("arm", "cloud"):
                            if to == here:
                                continue
                            r = _move(client, ld, to, mode)
                            here = to
                            if to == "arm":
                                rows.append((f"{state} MiB service, x86-64 -> aarch64 "
                                             "(emulated)", r))
                            say(f"   {mode}: -> {to} downtime {1e3 * r['downtime']:.0f} ms")
                time.sleep(0.5)
            lost, doubled = ld.lost_and_doubled()
            checksum = client.invoke("mig", "sum", b"", 120).decode()
        finally:
            client.close()
            c.stop()
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    _table(rows, lost, doubled, len(ld.calls), checksum, console, Table)


def _table(rows, lost, doubled, calls, checksum, console, table_cls) -> None:
    t = table_cls(title="fog bench migrate: medians per case and mode", title_justify="left")
    for col in ("case", "mode", "moves", "total", "downtime", "rounds", "sent / memory",
                "calls during p50 / p99"):
        t.add_column(col, no_wrap=True)
    cases: dict[tuple[str, str], list[dict]] = {}
    for case, r in rows:
        cases.setdefault((case, r["mode"]), []).append(r)
    for (case, mode), rs in cases.items():
        def med(k: str, rs=rs) -> float:
            return statistics.median(r[k] for r in rs)

        t.add_row(case, mode, str(len(rs)), f"{med('total'):.2f} s",
                  f"{1e3 * med('downtime'):.0f} ms", f"{med('rounds'):g}",
                  f"{med('sent') / 2**20:.1f} / {med('memory') / 2**20:.0f} MiB",
                  f"{1e3 * med('p50'):.1f} / {1e3 * med('p99'):.1f} ms")
    console.print(t)
    console.print(f"{calls} calls in all: {lost} lost, {doubled} doubled; state checksum "
                  f"after every move {checksum}")
    if any("emulated" in case for case, _ in rows):
        console.print("aarch64 rows run under qemu user emulation: indicative only.")


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="fog bench migrate")
    ap.add_argument("--state", type=int, default=16, help="MiB of service state")
    ap.add_argument("--runs", type=int, default=3, help="moves per mode")
    ap.add_argument("--arch", action="store_true", help="also x86-64 -> aarch64 (emulated)")
    ns = ap.parse_args(argv)
    run(ns.state, ns.runs, ns.arch)
    sys.stdout.flush()
