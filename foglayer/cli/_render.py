"""What people see: ``fog run --stats``, the tables of ``fog ps``, ``nodes``, ``explain`` and
``fog up``'s live view. rich is imported only when a table is drawn (``fog run`` pays for it
only with ``--stats``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from foglayer.runtime import Stats, format_size

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from foglayer.cli._output import (
        AppList,
        AttestationList,
        EventList,
        Explanation,
        NodeList,
        RunStats,
    )
    from foglayer.cluster import AppSpec


def show_stats(stats: Stats, exit_code: int, fmt: str | None) -> None:
    """``fog run --stats``: a table, or (``-o``) a RunStats document, on stderr."""
    import sys

    from foglayer.cli._output import emit, run_stats

    doc = run_stats(stats, exit_code)
    if fmt is None:
        print_stats(doc)
    else:
        emit(doc, fmt, sys.stderr, compact=True)  # type: ignore[arg-type]


def print_stats(doc: RunStats) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title="fog run --stats", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("instructions (fuel)", f"{doc.fuel:,}" if doc.fuel is not None else "n/a")
    table.add_row("peak memory", format_size(doc.peak_memory))
    table.add_row("wall time", f"{doc.wall_time * 1000:.3f} ms")
    table.add_row("WASI calls", f"{doc.wasi_calls:,}")
    table.add_row("WASI path", doc.wasi_path or "n/a")
    for name, count in sorted(doc.wasi_calls_by_kind.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {name}", f"{count:,}")
    console.print(table)


def deployed(spec: AppSpec, record: dict) -> str:
    """``fog deploy``'s first line: the generation written (or that nothing changed)."""
    if record.get("unchanged"):
        return f"{spec.name}: unchanged (generation {record['generation']})"
    sealed = ("; stored encrypted, its key only for attested nodes"
              if record.get("spec", {}).get("encrypted") else "")
    return (f"{spec.name}: deployed generation {record['generation']} "
            f"(module {spec.module}, sha256 {spec.digest[:12]}, {spec.size} bytes{sealed})")


def placed(spec: AppSpec, p: dict) -> str:
    """``fog deploy``: one replica's placement, once it settled."""
    where = f" on {p['node']}" if p.get("node") else ""
    extra = f": {p['error']}" if p["state"] in ("pending", "failed") and p.get("error") else ""
    return f"  {spec.name}.{p['replica']}: {p['state']}{where}{extra}"


_at_line_start: dict[tuple[str, str], bool] = {}


def write_chunk(chunk: dict) -> None:
    """``fog logs``: stdout to stdout, stderr to stderr, each line led by the node that wrote
    it and the replica (``[edge kv.0] ...``)."""
    import sys

    out = sys.stdout if chunk["stream"] == "stdout" else sys.stderr
    key = (chunk.get("instance") or "", chunk["stream"])
    tag = f"[{chunk['node']} {chunk['app']}.{chunk['replica']}] ".encode()
    data = chunk["data"]
    lines = data.split(b"\n")
    buf = bytearray()
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break  # the chunk ended a line: the next chunk starts one
        if i > 0 or _at_line_start.get(key, True):
            buf += tag
        buf += line
        if not last:
            buf += b"\n"
    _at_line_start[key] = data.endswith(b"\n")
    out.flush()
    out.buffer.write(bytes(buf))
    out.flush()


_STATE_STYLE = {"running": "green", "ready": "green", "scheduled": "cyan", "starting": "cyan",
                "exited": "blue", "pending": "yellow", "failed": "red", "lost": "red",
                "unreachable": "yellow"}


def _state(s: str) -> Text:
    from rich.text import Text

    return Text(s, style=_STATE_STYLE.get(s, ""))


def _age(t: float | None) -> str:
    if not t:
        return "-"
    d = max(0.0, time.time() - t)
    if d < 60:
        return f"{d:.0f}s"
    if d < 3600:
        return f"{d / 60:.0f}m"
    return f"{d / 3600:.1f}h"


def ps_table(view: AppList) -> Table:
    from rich.table import Table

    t = Table(title="apps", title_justify="left", expand=False)
    for col in ("app", "kind", "replica", "node", "state", "restarts", "age", "detail"):
        t.add_column(col, no_wrap=col != "detail")
    for app in view.items:
        if app.replicas == 0:
            t.add_row(app.name, app.kind, "-", "-", "scaled to 0", "", "", "")
        for r in app.instances:
            if r.state == "unplaced":
                t.add_row(app.name, app.kind, str(r.replica), "-", _state(r.state), "", "", "")
                continue
            detail = r.error or ""
            if r.state == "exited":
                detail = f"exit code {r.exit_code}"
            if r.moved_from and r.state == "running":
                detail = f"moved from {r.moved_from}"
            t.add_row(app.name, app.kind, str(r.replica), r.node or "-", _state(r.state),
                      str(r.restarts), _age(r.since), detail)
    return t


def nodes_table(view: NodeList) -> Table:
    from rich.table import Table

    # Everything but "state" and "attested" is what the node claims about itself; "attested"
    # is the controller's latest appraisal (fog attest NODE), the only thing that lets secrets
    # and TEE apps in.
    t = Table(title="nodes (capabilities as each node claims them)", title_justify="left")
    for col in ("node", "state", "attested", "arch", "cpus", "speed", "memory (used/cap)",
                "instances", "labels"):
        t.add_column(col, no_wrap=True, min_width=len(col) if col in ("state", "attested") else None)
    for n in view.items:
        speed = f"{n.speed / 1e6:,.0f} M/s"
        if n.fuel_rate:
            speed += " (rate-limited)"
        tee = f" ({','.join(n.tee)})" if n.tee else ""
        state = _state(n.state)
        if n.cordoned:  # kubectl's Ready,SchedulingDisabled
            state.append(", cordoned", style="yellow")
        t.add_row(n.name, state, (n.attested or "none") + tee, n.arch,
                  str(n.cpus), speed,
                  f"{format_size(n.memory_used)} / {format_size(n.memory_capacity)}",
                  str(n.instances), ",".join(f"{k}={v}" for k, v in sorted(n.labels.items())))
    return t


def explain_table(view: Explanation) -> list[Table]:
    from rich.table import Table
    from rich.text import Text

    out = []
    for d in view.replicas:
        when = time.strftime("%H:%M:%S", time.localtime(d.time))
        title = f"{view.app}.{d.replica}: {d.why} at {when} -> {d.winner or 'no node fits'}"
        if d.examined < d.nodes:
            title += f" ({d.examined} of {d.nodes} nodes examined)"
        t = Table(title=title, title_justify="left")
        names: list[str] = []
        for row in d.candidates:
            names += [k for k in row.scores if k not in names]
        for col in ("node", "filter", *names, "total", ""):
            t.add_column(col, no_wrap=col != "filter")
        for row in d.candidates:
            if not row.passed:
                cells = [Text(f"{row.filter}: {row.reason}", style="red")] + [""] * len(names) + ["", ""]
            else:
                cells = [Text("passed", style="green")]
                cells += [f"{row.scores[k]:.0f}" if k in row.scores else "-" for k in names]
                cells += [f"{row.total or 0:.1f}",
                          Text("winner", style="bold green") if row.winner else ""]
            t.add_row(Text(row.node, style="bold" if row.winner else ""), *cells)
        if d.moves:  # why each live move happened
            t.caption = "\n".join(
                f"{time.strftime('%H:%M:%S', time.localtime(m.time))} moved live from "
                f"{m.source} to {m.target}: {m.why}" for m in d.moves)
            t.caption_justify = "left"
        out.append(t)
    return out


def events_table(events: list[dict], title: str = "events") -> Table:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left", show_header=False, box=None)
    t.add_column("time", no_wrap=True, style="dim")
    t.add_column("event")
    for e in events:
        style = {"failed": "red", "pending": "yellow", "node": "cyan", "moved": "magenta",
                 "leader": "bold"}.get(e.get("kind", ""), "")
        t.add_row(time.strftime("%H:%M:%S", time.localtime(e["time"])), Text(e["message"], style=style))
    return t


def event_list_table(view: EventList) -> Table:
    """``fog events``."""
    return events_table([{"time": e.time, "kind": e.kind, "message": e.message}
                         for e in view.items])


# -- fog up -------------------------------------------------------------------------------------


async def _snapshot(client) -> tuple:
    return (await client.nodes(), await client.apps(), await client.placements(),
            await client.events(12))


async def up_live(c, client, stop) -> None:
    """``fog up`` on a terminal: nodes, apps and the last events, redrawn until ``stop``."""
    import asyncio

    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    from foglayer.cli._output import app_list, node_list

    def render(snap) -> Group:
        nodes, apps, placements, events = snap
        parts = [Text(f"fog up — {c.server.url} — Ctrl-C stops (the state stays)", style="bold"),
                 nodes_table(node_list(nodes, placements, apps)),
                 ps_table(app_list(apps, placements)), events_table(events)]
        parts += [Text(d, style="red") for d in c.dead()]
        return Group(*parts)

    with Live(render(await _snapshot(client)), refresh_per_second=4, screen=False) as live:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
            try:
                live.update(render(await _snapshot(client)))
            except Exception:  # noqa: BLE001 - the next refresh tries again
                pass


async def up_lines(c, client, stop, echo: Callable[[str], None]) -> None:
    """``fog up`` without a terminal: one line per new event or exited process."""
    import asyncio

    seen: set[tuple] = set()
    dead: set[str] = set()
    first = True
    while not stop.is_set():
        try:
            events = await client.events(50)
        except Exception:  # noqa: BLE001
            events = []
        for e in events:
            key = (e["time"], e["message"])
            if key not in seen:
                seen.add(key)
                if not first or time.time() - e["time"] < 5:
                    echo(f"{time.strftime('%H:%M:%S', time.localtime(e['time']))} {e['message']}")
        first = False
        for d in c.dead():
            if d not in dead:
                dead.add(d)
                echo(f"fog up: {d}")
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass


@contextlib.contextmanager
def move_progress():
    """A progress bar for ``fog migrate`` (on stderr); yields the callback to feed it."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # nothing to redraw: the summary says it all
        yield lambda p: None
        return
    # binary units: the summary says MiB
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("moving", total=None)

        def update(p) -> None:
            bar.update(task, description=p.phase, completed=p.sent, total=p.total or None)

        yield update


def move_summary(s) -> str:
    """One line: where it went, total time, downtime, rounds, bytes against memory."""
    switch = (f" (its last instruction on {s.source} to its first on {s.target}: "
              f"{1000 * s.switch_s:.0f} ms)" if s.switch_s else "")
    return (f"{s.app}: moved from {s.source} to {s.target} ({s.mode}) in {s.total_s:.2f} s; "
            f"downtime {1000 * s.downtime_s:.0f} ms{switch}; {s.rounds} "
            f"round{'s' * (s.rounds != 1)}; "
            f"{format_size(s.bytes_sent)} sent for {format_size(s.memory)} of memory")


def attest_table(doc: AttestationList) -> Table:
    """``fog attest``: one row per node: status, backend, age, the AR4SI vector and why."""
    from rich.table import Table
    from rich.text import Text

    style = {"affirming": "green", "warning": "yellow", "contraindicated": "red"}
    t = Table(title="attestation results (EAR, signed by the controller)", title_justify="left")
    for col in ("node", "status", "backend", "attested", "vector", "why"):
        t.add_column(col, no_wrap=col not in ("why", "vector"))
    now = time.time()
    for a in doc.items:
        if a.status == "none":
            t.add_row(a.node, Text("none", style="dim"), "-", "-", "-", "not attested yet")
            continue
        status = a.status + ("" if a.fresh else " (expired)")
        if a.proves_nothing:
            status += " (sim: PROVES NOTHING)"
        vector = " ".join(f"{k}={v}" for k, v in a.vector.items())
        t.add_row(a.node, Text(status, style=style.get(a.status, "")), a.backend or "-",
                  f"{now - (a.issued_at or now):.0f} s ago", vector,
                  "; ".join(a.reasons) or "all checks passed")
    return t


def usage_table(doc) -> list:
    """``fog usage``: one table per tenant total and one per app."""
    from rich.table import Table

    def table(title: str, rows, with_app: bool) -> Table:
        t = Table(title=title, title_justify="left")
        cols = ["tenant", *(["app"] if with_app else []), "instances", "instructions (fuel)",
                "memory-seconds", "invocations", "WASI calls", "volume bytes"]
        for c in cols:
            t.add_column(c, no_wrap=True, justify="left" if c in ("tenant", "app") else "right")
        for r in rows:
            t.add_row(r.tenant, *([r.app] if with_app else []), str(r.instances), f"{r.fuel:,}",
                      f"{r.memory_seconds / (1 << 20):,.1f} MiB·s", f"{r.invocations:,}",
                      f"{r.wasi_calls:,}", format_size(r.volume_bytes))
        return t

    out = [table("usage by tenant", doc.tenants, False), table("usage by app", doc.apps, True)]
    if doc.dropped:
        out.append(f"({doc.dropped} reports refused: from nodes that did not run the instance)")
    return out
