"""``fog bench migrate``: live moves of a service under load and of running commands,
pre-copy against stop-and-copy, measured side by side in one run (the code lives beside what
it measures: ``foglayer.bench`` never imports the cluster).

A ``fog up`` continuum (nodes cloud and edge, and with ``--arch`` the emulated ``arm`` node)
runs ``bench_migrate.c``: ``--state`` MiB of incompressible state, one 64 KiB page of it
rewritten by every call. One client thread calls it back to back the whole time. Each move
goes to the other node, alternating the modes; for each mode it reports medians of total
time, downtime (source frozen until the target serves), rounds, bytes sent against the
memory size, and the latency of the calls made during the moves (p50, p99). Every call
returns its sequence number: a gap is a lost call, a repeat a doubled one.

Then, for each of ``--sizes`` (MiB), a command with ``mobility: live`` (``bench_migrate_cmd.c``)
with that working set of incompressible data, pages of it rewritten at ``--rate`` MiB/s, is
moved the same way between two cloud-class nodes (a 1 GiB working set does not fit an edge
node), and at the end must exit 0 where it ended up.
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
COMMAND = Path(__file__).with_name("bench_migrate_cmd.c")
MODES = ("pre-copy", "stop-and-copy")
SIZES = (16, 256, 1024)


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


def _move(client, load: Load | None, to: str, mode: str, app: str = "mig") -> dict:
    t0 = time.perf_counter()
    s = client.migrate(app, to, None, 900, mode == "stop-and-copy")
    t1 = time.perf_counter()
    lat = load.during(t0, t1) if load is not None else []
    return {"mode": s.mode, "total": s.total_s, "downtime": s.downtime_s, "rounds": s.rounds,
            "switch": s.switch_s,
            "sent": s.bytes_sent, "memory": s.memory, "source": s.source, "target": s.target,
            "p50": pct(lat, 50), "p99": pct(lat, 99), "calls": len(lat)}


def run(state: int = 16, runs: int = 3, arch: bool = False,
        sizes: tuple[int, ...] = SIZES, rate: float = 10.0, service: bool = True) -> None:
    """Run the benchmark and print its table (``fog bench migrate``)."""
    from rich.console import Console
    from rich.table import Table

    rows: list[tuple[str, dict]] = []
    summary = _service(state, runs, arch, rows) if service else None
    if sizes:
        _commands(sizes, rate, runs, rows)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    _table(rows, summary, console, Table)


def _commands(sizes: tuple[int, ...], rate: float, runs: int,
              rows: list[tuple[str, dict]]) -> None:
    """Each size's command, moved ``runs`` times per mode between two cloud-class nodes."""
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("cloud2", "cloud")]
    with tempfile.TemporaryDirectory(prefix="fog-bench-") as tmp:
        d = Path(tmp)
        say("== a continuum for the commands: nodes cloud, cloud2")
        c = Continuum(d / "continuum", nodes)
        c.start()
        client = c.client("fog-bench-migrate")
        try:
            c.wait_ready(client, 300)
            for size in sizes:
                rows.extend(_command_case(c, client, d, size, rate, runs))
        finally:
            client.close()
            c.stop()


def _command_case(c, client, d: Path, size: int, rate: float, runs: int) -> list:
    name = f"cmd{size}"
    path = d / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodule: {COMMAND}\nargs: ['{size}', '{rate:g}']\n"
                    "mobility: live\nrestart: never\ndirs: [/data]\n"
                    f"limits: {{memory: {size + 64}MiB}}\n")
    (p,) = client.wait(name, client.deploy(load(path))["generation"], 1, 300)
    here = p["node"]

    def filled() -> bool:
        chunks: list[dict] = []
        client.logs(name, chunks.append)
        q = client.app_placements(name, 1)[0]
        if q and q["state"] in ("exited", "failed"):
            err = b"".join(x["data"] for x in chunks if x["stream"] == "stderr")
            raise RuntimeError(f"{name} ended before its moves: {q.get('error')} "
                               f"{err.decode(errors='replace').strip()}")
        return b"filled" in b"".join(x["data"] for x in chunks if x["stream"] == "stdout")

    wait_until(filled, 600, f"{name} to fill its working set")
    say(f"== a command with {size} MiB of working set, {rate:g} MiB/s of it rewritten, on "
        f"{here}; {runs} moves per mode")
    time.sleep(1.0)  # its rewriting at a steady rate
    out = []
    for i in range(runs):
        for mode in MODES:
            to = "cloud2" if here == "cloud" else "cloud"
            r = _move(client, None, to, mode, name)
            here = to
            out.append((f"{size} MiB command, x86-64 -> x86-64", r))
            say(f"   {mode}: {r['source']} -> {r['target']} downtime "
                f"{1e3 * r['downtime']:.0f} ms (last -> first instruction "
                f"{1e3 * r['switch']:.0f} ms), {r['rounds']} rounds, "
                f"{r['sent'] / 2**20:.0f} MiB sent, {r['total']:.1f} s ({i + 1}/{runs})")
    (c.root / "nodes" / here / "volumes" / name / "0" / "data" / "stop").touch()
    p = wait_until(lambda: (q := client.app_placements(name, 1)[0])
                   and q["state"] in ("exited", "failed") and q, 300, f"{name} to end")
    if (p["state"], p["exit_code"], p["node"]) != ("exited", 0, here):
        raise RuntimeError(f"{name} ended {p['state']} ({p.get('error')}) on {p['node']}")
    client.stop(name)
    return out


def _service(state: int, runs: int, arch: bool, rows: list[tuple[str, dict]]) -> tuple:
    """The service under load; (calls, lost, doubled, checksum)."""
    nodes = [NodeSpec("cloud", "cloud"), NodeSpec("edge", "edge")]
    if arch:
        from foglayer.toolchain import arm_root

        arm_root()  # built once per machine (minutes), before the clock starts
        nodes.append(NodeSpec("arm", "arm"))
    memory = max(32, 2 * state + 16)
    with tempfile.TemporaryDirectory(prefix="fog-bench-") as tmp:
        d = Path(tmp)
        say(f"== a continuum: nodes {', '.join(n.name for n in nodes)}")
        c = Continuum(d / "continuum", nodes)
        c.start()
        client = c.client("fog-bench-migrate")
        try:
            c.wait_ready(client, 300)
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
    return len(ld.calls), lost, doubled, checksum


def _table(rows, summary, console, table_cls) -> None:
    t = table_cls(title="fog bench migrate: medians per case and mode", title_justify="left")
    for col in ("case", "mode", "moves", "total", "downtime", "last -> first instr.", "rounds",
                "sent / memory", "calls during p50 / p99"):
        t.add_column(col, no_wrap=True)
    cases: dict[tuple[str, str], list[dict]] = {}
    for case, r in rows:
        cases.setdefault((case, r["mode"]), []).append(r)
    for (case, mode), rs in cases.items():
        def med(k: str, rs=rs) -> float:
            return statistics.median(r[k] for r in rs)

        calls = (f"{1e3 * med('p50'):.1f} / {1e3 * med('p99'):.1f} ms"
                 if any(r["calls"] for r in rs) else "-")
        switch = f"{1e3 * med('switch'):.0f} ms" if any(r["switch"] for r in rs) else "-"
        t.add_row(case, mode, str(len(rs)), f"{med('total'):.2f} s",
                  f"{1e3 * med('downtime'):.0f} ms", switch, f"{med('rounds'):g}",
                  f"{med('sent') / 2**20:.1f} / {med('memory') / 2**20:.0f} MiB", calls)
    console.print(t)
    if summary is not None:
        calls, lost, doubled, checksum = summary
        console.print(f"{calls} calls in all: {lost} lost, {doubled} doubled; state checksum "
                      f"after every move {checksum}")
    console.print("downtime: from the controller's freeze to the target's confirmation (an "
                  "upper bound: it includes the round trips); last -> first instr.: a "
                  "command's last instruction on the source to its first on the target (the "
                  "nodes' clocks); on a shared machine, noisy.")
    if any("emulated" in case for case, _ in rows):
        console.print("aarch64 rows run under qemu user emulation: indicative only.")


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="fog bench migrate")
    ap.add_argument("--state", type=int, default=16, help="MiB of service state")
    ap.add_argument("--runs", type=int, default=3, help="moves per mode")
    ap.add_argument("--arch", action="store_true", help="also x86-64 -> aarch64 (emulated)")
    ap.add_argument("--sizes", type=parse_sizes, default=SIZES,
                    help="MiB of the commands' working sets, comma-separated ('' for none)")
    ap.add_argument("--rate", type=float, default=10.0, help="MiB/s the commands rewrite")
    ap.add_argument("--no-service", dest="service", action="store_false",
                    help="only the commands")
    ns = ap.parse_args(argv)
    run(ns.state, ns.runs, ns.arch, ns.sizes, ns.rate, ns.service)
    sys.stdout.flush()


def parse_sizes(text: str) -> tuple[int, ...]:
    """``16,256,1024`` -> MiB sizes (each 1..3072)."""
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--sizes: {text!r} is not a comma-separated list of MiB") from None
    if any(not 1 <= x <= 3072 for x in sizes):
        raise ValueError(f"--sizes: {text!r}: each size is 1..3072 MiB")
    return sizes
