"""Suite results: ratios, geometric means, the rich table, CSV and JSON files."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.bench._harness import REFERENCE, RUNNERS, Row, geomean

# (numerator, denominator, column title), in table order.
RATIOS = (
    ("native-native", REFERENCE, "-mcpu=native ×"),
    ("fog", REFERENCE, "fog ×"),
    ("wasmtime", REFERENCE, "wasmtime ×"),
    ("fog", "wasmtime", "fog/wasmtime"),
    ("fog-python", REFERENCE, "fog Python WASI ×"),
)
SHORT = {"native-baseline": "native", "native-native": "-mcpu=native", "fog": "fog run",
         "wasmtime": "wasmtime", "fog-python": "fog run, Python WASI"}
WORST_BY = ("fog", REFERENCE)


def ratio_key(a: str, b: str) -> str:
    return f"{a}/{b}"


@dataclass
class SuiteResult:
    """One suite run: rows of medians, environment, where the files went."""

    suite: str
    title: str
    params: dict
    env: dict
    runners: tuple[str, ...]
    rows: list[Row]
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def mismatches(self) -> list[str]:
        return [f"{r.group} {r.name}".strip() for r in self.rows
                if any(c.mismatch for c in r.cells.values())]

    def groups(self) -> list[str]:
        return list(dict.fromkeys(r.group for r in self.rows))

    def ratios(self) -> list[tuple[str, str, str]]:
        return [(a, b, t) for a, b, t in RATIOS if a in self.runners and b in self.runners]

    def summary(self, group: str) -> dict:
        rows = [r for r in self.rows if r.group == group]
        out: dict = {"rows": len(rows), "ok": sum(r.ok for r in rows), "geomean": {}, "worst": []}
        for a, b, _ in self.ratios():
            vals = [v for r in rows if (v := r.ratio(a, b)) is not None]
            out["geomean"][ratio_key(a, b)] = geomean(vals)
            out.setdefault("geomean_n", {})[ratio_key(a, b)] = len(vals)
        a, b = WORST_BY if WORST_BY[0] in self.runners else ("wasmtime", REFERENCE)
        ranked = sorted((r for r in rows if r.ratio(a, b) is not None),
                        key=lambda r: r.ratio(a, b) or 0, reverse=True)
        out["worst"] = [{"name": r.name, ratio_key(a, b): r.ratio(a, b)} for r in ranked[:5]]
        out["worst_by"] = ratio_key(a, b)
        return out

    def to_json(self) -> dict:
        return {
            "suite": self.suite, "title": self.title, "params": self.params,
            "environment": self.env, "ok": self.ok, "checksum_mismatches": self.mismatches,
            "runners": {k: RUNNERS[k].label for k in self.runners},
            "summary": {g: self.summary(g) for g in self.groups()},
            "rows": [r.to_json() for r in self.rows],
            "notes": self.notes,
        }


def write_files(result: SuiteResult) -> None:
    """results.json and results.csv in the result's directory."""
    d = result.out_dir
    if d is None:
        return
    jpath = d / "results.json"
    jpath.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    cpath = d / "results.csv"
    with open(cpath, "w", newline="") as f:
        w = csv.writer(f)
        head = ["group", "name"]
        for k in result.runners:
            head += [f"{k}_median_s", f"{k}_runs"]
        head += [ratio_key(a, b) for a, b, _ in result.ratios()]
        head += ["check", "status"]
        w.writerow(head)
        for r in result.rows:
            line: list = [r.group, r.name]
            for k in result.runners:
                m = r.median(k)
                line += ["" if m is None else f"{m:.9f}", len(r.cells[k].times)]
            line += ["" if (v := r.ratio(a, b)) is None else f"{v:.4f}" for a, b, _ in result.ratios()]
            line += [r.ref_check or "", "ok" if r.ok else "; ".join(r.problems())]
            w.writerow(line)
    result.files[:0] = [jpath, cpath]


# --------------------------------------------------------------------------- console


def _t(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 1:
        return f"{v:.3f} s"
    if v >= 1e-3:
        return f"{v * 1e3:.2f} ms"
    return f"{v * 1e6:.1f} µs"


def _x(v: float | None, *, warn: float = 1.3) -> str:
    if v is None:
        return "—"
    text = f"{v:.2f}×"
    return f"[red]{text}[/]" if v > warn else f"[green]{text}[/]" if v <= 1.05 else text


def make_console():
    """A console on stdout; wide enough for the tables when stdout is not a terminal."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=170)


def print_result(result: SuiteResult, console=None) -> None:
    from rich.table import Table

    console = console or make_console()
    emulated = result.env.get("emulated")
    if emulated:
        console.print(f"[bold yellow]{emulated}.[/]")
    for group in result.groups():
        rows = [r for r in result.rows if r.group == group]
        summ = result.summary(group)
        table = Table(title=f"{result.title} {group}: medians of {result.params['runs']}; "
                            "× = time / native (-O3 -mcpu=baseline)", title_justify="left")
        table.add_column(result.params.get("row_label", "name"), style="bold")
        for k in result.runners:
            table.add_column(SHORT.get(k, k), justify="right")
        for _, _, title in result.ratios():
            table.add_column(title, justify="right")
        table.add_column("status")
        for r in rows:
            cells = [_t(r.median(k)) for k in result.runners]
            ratios = [_x(r.ratio(a, b)) for a, b, _ in result.ratios()]
            status = "ok" if r.ok else "[bold red]" + "; ".join(r.problems())[:90] + "[/]"
            name = f"{r.name} [dim]{r.label[:34]}[/]" if r.label else r.name
            table.add_row(name, *cells, *ratios, status)
        table.add_section()
        gm = summ["geomean"]
        table.add_row("geometric mean", *([""] * len(result.runners)),
                      *[_x(gm[ratio_key(a, b)]) for a, b, _ in result.ratios()],
                      f"{summ['ok']}/{summ['rows']} ok")
        console.print(table)
        if summ["worst"]:
            key = summ["worst_by"]
            worst = ", ".join(f"{w['name']} {w[key]:.2f}×" for w in summ["worst"])
            console.print(f"five worst ({key.replace(REFERENCE, 'native')}): {worst}")
    env = result.env
    arch = f"{env['arch']} emulated on {env['host_arch']}" if emulated else env["arch"]
    console.print(f"[dim]{env['cpu_model']} ({arch}, {env['cpus']} CPUs); zig "
                  f"{env['zig']}; wasmtime-py {env['wasmtime_py']}"
                  + (f"; SQLite {env['sqlite']}" if env.get("sqlite") else "") + "[/]")
    for b, argv in env["builds"].items():
        console.print(f"[dim]  {b}: {argv}[/]")
    for flags in env.get("program_flags", []):
        if flags:
            console.print(f"[dim]  + per program: {flags}[/]")
    console.print(f"[dim]  raw wasmtime: {env['wasmtime_engine']}[/]")
    for note in result.notes:
        if note != emulated:  # said first, in full
            console.print(f"[dim]  note: {note}[/]")
    for p in result.files:
        console.print(f"wrote {p}")
    if emulated:
        console.print("[bold yellow]Emulated: indicative ratios only.[/]")
    if result.mismatches:
        console.print(f"[bold red]CHECKSUM MISMATCH: {', '.join(result.mismatches)}[/]")
    bad = [r for r in result.rows if not r.ok and not any(c.mismatch for c in r.cells.values())]
    if bad:
        console.print(f"[bold red]FAILED: {', '.join(f'{r.group} {r.name}'.strip() for r in bad)}[/]")
