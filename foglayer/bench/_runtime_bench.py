"""`fog bench runtime` (issue 9): what our WASI and engine set-up cost, against native and
raw wasmtime with its built-in WASI, measured side by side in one run.

- (a) 100,000 writes of 16 bytes to a file in a preopened directory;
- (b) reading a 64 MiB file in 4 KiB chunks;
- (c) 100,000 ``clock_gettime(CLOCK_MONOTONIC)`` calls;
- (d) 100,000 ``sched_yield()`` calls: one trip into the host and back, the floor under (c);
- (e) 100,000 calls of a no-op host import: foglayer's trampoline (a ``HostFunction`` beside
  our WASI) against wasmtime-py's ``Func``; Wasm only;
- a compute-bound matrix multiply (~1 s native);
- cold start: a whole ``fog run`` process of a tiny program, warm and cold AOT cache.

Times are measured inside the programs, except cold start (whole-process wall time).
Raw wasmtime gets the engine settings ``fog run`` uses (``memory_may_move=False``,
4 GiB reservation), so the compute row compares the same machine code set-up.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from foglayer.bench._harness import (
    REFERENCE,
    RUNNERS,
    BadOutput,
    Plan,
    Program,
    Row,
    Sample,
    environment,
    execute,
    fog_argv,
    json_lines,
    out_dir,
    require_compiler,
    run_process,
    sample,
    wasmtime_argv,
    wasmtime_cache_path,
)
from foglayer.errors import FogError

SOURCE_DIR = Path(__file__).with_name("runtime")
# fog run on both WASI paths: the hot calls in C (FOG_WASI_NATIVE=1) and all in Python (=0)
RUNTIME_RUNNERS = ("native-baseline", "fog", "fog-python", "wasmtime")
CALLS = 100_000
READ_SIZE = 64 << 20
CHUNK = 4096
MATMUL_N = 1100  # ~1 s at native speed (-mcpu=baseline) on this 2-core AMD EPYC VM

# name -> (source, args, calls per run or None, description)
BENCHES = {
    "write16": ("write16.c", ("{data}/write16.out", str(CALLS)), CALLS,
                "(a) 100,000 writes of 16 B to a file"),
    "read4k": ("read4k.c", ("{data}/read4k.bin",), READ_SIZE // CHUNK + 1,
               "(b) read 64 MiB in 4 KiB chunks"),
    "clock": ("clock.c", (str(CALLS),), CALLS, "(c) 100,000 clock_gettime(MONOTONIC)"),
    "yield": ("yield.c", (str(CALLS),), CALLS, "(d) 100,000 sched_yield (host-call floor)"),
    "noop": ("noop.c", (str(CALLS),), CALLS, "(e) 100,000 calls of a no-op host import"),
    "matmul": ("matmul.c", (str(MATMUL_N),), None, f"matmul {MATMUL_N}x{MATMUL_N} doubles"),
}
PROBE = Path(__file__).with_name("_hostcall_probe.py")


def _probe_argv(kind: str, wasm: Path, args: list[str]) -> list[str]:
    """(e) runs under foglayer's runtime (a HostFunction) or wasmtime-py's ``Func``."""
    if kind == "fog":
        return [sys.executable, str(PROBE), str(wasm), *args]
    return wasmtime_argv(wasm, args, [], "fog", cache=wasmtime_cache_path(wasm, "fog"),
                         noop_import=True)

# Issue 15's targets: (numerator, denominator, limit) or ("us_per_call", runner, limit).
TARGETS = {
    "write16": ("fog", REFERENCE, 1.5),
    "read4k": ("fog", REFERENCE, 1.5),
    "clock": ("us_per_call", "fog", 0.1),
    "matmul": ("fog", "wasmtime", 1.02),
}
# (numerator, denominator, column title), in table order.
RATIOS = (("fog", REFERENCE, "fog/native"), ("fog-python", REFERENCE, "fog Python WASI/native"),
          ("wasmtime", REFERENCE, "wasmtime/native"), ("fog", "wasmtime", "fog/wasmtime"))
# Issue 15's targets for a warm start: the whole process, and its cost over `import wasmtime`.
COLD_TARGET_MS = 120.0
COLD_OVER_WASMTIME_MS = 25.0
IMPORT_WASMTIME = "python -c 'import wasmtime'"


def _parser(name: str):
    def parse(stdout: str) -> dict[str, Sample]:
        lines = json_lines(stdout)
        if len(lines) != 1 or lines[0].get("bench") != name:
            raise BadOutput(f"expected one {name} JSON line")
        return {name: sample(lines[0], "check")}

    return parse


@dataclass
class ColdCase:
    name: str
    kind: str  # "process" | "fog-warm" | "fog-cold" | "wasmtime-warm" | "wasmtime-cold"
    argv: list[str]
    expect: str | None = None
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class RuntimeResult:
    params: dict
    env: dict
    rows: list[Row]
    cold: list[ColdCase]
    out_dir: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows) and not any(c.errors for c in self.cold)

    def per_call_us(self, row: Row, runner: str) -> float | None:
        calls = BENCHES[row.name][2]
        m = row.median(runner)
        return None if calls is None or m is None else m / calls * 1e6

    def target(self, row: Row) -> tuple[str, bool | None]:
        t = TARGETS.get(row.name)
        if t is None:
            return "", None
        if t[0] == "us_per_call":
            v = self.per_call_us(row, t[1])
            return f"≤ {t[2]} µs/call", None if v is None else v <= t[2]
        v = row.ratio(t[0], t[1])
        return f"{t[0]}/{'native' if t[1] == REFERENCE else t[1]} ≤ {t[2]}×", \
            None if v is None else v <= t[2]

    def to_json(self) -> dict:
        rows = []
        for r in self.rows:
            d = r.to_json()
            d["description"] = BENCHES[r.name][3]
            d["calls"] = BENCHES[r.name][2]
            d["us_per_call"] = {k: self.per_call_us(r, k) for k in RUNTIME_RUNNERS}
            d["ratios"] = {title: r.ratio(a, b) for a, b, title in RATIOS}
            text, met = self.target(r)
            d["target"] = {"what": text, "met": met} if text else None
            rows.append(d)
        return {"suite": "runtime", "params": self.params, "environment": self.env, "ok": self.ok,
                "rows": rows,
                "cold_start": [{"name": c.name, "median_s": c.median(), "times_s": c.times,
                                "errors": c.errors} for c in self.cold]}


def _write_input(path: Path) -> None:
    path.write_bytes(random.Random(20240901).randbytes(READ_SIZE))


def _cold_cases(hello_exe: Path | str, hello_wasm: Path | str, warm_cache: Path) -> list[ColdCase]:
    py = sys.executable
    cases = [ColdCase("python -c pass", "process", [py, "-c", "pass"]),
             ColdCase(IMPORT_WASMTIME, "process", [py, "-c", "import wasmtime"])]
    if isinstance(hello_exe, Path):
        cases.insert(0, ColdCase("native", "process", [str(hello_exe)], "hello"))
    if isinstance(hello_wasm, Path):
        cases += [
            ColdCase("fog run, warm AOT cache", "fog-warm", fog_argv(hello_wasm, [], []), "hello"),
            ColdCase("fog run, cold cache (fresh FOG_CACHE_DIR)", "fog-cold",
                     fog_argv(hello_wasm, [], []), "hello"),
            ColdCase("raw wasmtime, warm cache (deserialize)", "wasmtime-warm",
                     wasmtime_argv(hello_wasm, [], [], "fog",
                                   cache=wasmtime_cache_path(hello_wasm, "fog")), "hello"),
            ColdCase("raw wasmtime, cold (compile)", "wasmtime-cold",
                     wasmtime_argv(hello_wasm, [], [], "fog", cache=None), "hello"),
        ]
    return cases


def runtime(runs: int = 5, *, out: str | os.PathLike | None = None, write: bool = True,
            progress: bool = True, timeout: float = 600.0, matmul_n: int = MATMUL_N,
            calls: int = CALLS) -> RuntimeResult:
    """Run the runtime micro-benchmarks and the cold-start measurement, ``runs`` times each."""
    from foglayer.toolchain import CompileError, compile_c

    if runs < 1:
        raise FogError(f"--runs {runs}: must be at least 1")
    require_compiler()
    d = out_dir("runtime", out) if write else None
    workroot = Path(tempfile.mkdtemp(prefix="fog-bench-"))
    try:
        data = workroot / "data"
        data.mkdir()
        _write_input(data / "read4k.bin")
        programs = []
        for name, (src, args, _, _) in BENCHES.items():
            if name == "matmul":
                args = (str(matmul_n),)
            elif name != "read4k":
                args = tuple(str(calls) if a == str(CALLS) else a for a in args)
            wasm_only = name == "noop"
            programs.append(Program(name=name, sources=(SOURCE_DIR / src,), flags=(),
                                    parse=_parser(name), rows=(name,), args=args,
                                    workdir=data, deps=(SOURCE_DIR / "rtbench.h",),
                                    only=("fog", "wasmtime") if wasm_only else None,
                                    launch=_probe_argv if wasm_only else None))
        plan = Plan(programs, runners=RUNTIME_RUNNERS, runs=runs, timeout=timeout,
                    wasmtime_settings="fog", progress=progress)
        env = environment(plan.runners, "fog", workroot)
        rows = execute(plan, workroot)

        # Cold start: whole-process wall time of a tiny program.
        builds = {}
        for b, target, flags in (("exe", "native", ("-O3", "-mcpu=baseline")),
                                 ("wasm", "wasm32-wasi", ("-O3", "-msimd128"))):
            try:
                builds[b] = compile_c([SOURCE_DIR / "hello.c"], target=target, flags=flags)
            except CompileError as e:
                builds[b] = str(e)
        warm = workroot / "warm-cache"
        cases = _cold_cases(builds["exe"], builds["wasm"], warm)
        _cold_start(cases, runs, warm, workroot, timeout, progress)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    for b in ("exe", "wasm"):
        if isinstance(builds.get(b), str):
            cases.append(ColdCase(f"hello ({b})", "process", [], errors=[builds[b]]))
    params = {"runs": runs, "calls": calls, "read_size": READ_SIZE, "chunk": CHUNK,
              "matmul_n": matmul_n}
    env["cold_start"] = ("whole-process wall time, measured by the harness; warm = AOT cache "
                         "filled first; cold = a fresh FOG_CACHE_DIR (fog) or no cache (wasmtime)")
    result = RuntimeResult(params, env, rows, cases, out_dir=d)
    if d is not None:
        p = d / "results.json"
        p.write_text(json.dumps(result.to_json(), indent=1) + "\n")
        result.files.append(p)
        _write_csv(result, d / "results.csv")
    return result


def _cold_start(cases: list[ColdCase], runs: int, warm: Path, workroot: Path, timeout: float,
                progress: bool) -> None:
    import compileall

    import foglayer
    from foglayer.bench._harness import _Progress

    # A warm start has foglayer's byte code too (pip compiles it at install). Compiled here
    # explicitly, so PYTHONDONTWRITEBYTECODE in the caller's environment does not turn every
    # timed start into a compile of each module changed since the last write (+15 ms seen).
    compileall.compile_dir(Path(foglayer.__file__).parent, quiet=2)
    base_env = dict(os.environ)
    with _Progress(progress, (runs + 1) * len(cases)) as bar:
        # One untimed round: warms the OS page cache and fills the warm AOT caches.
        for rep in range(-1, runs):
            for case in cases:
                bar.doing(f"cold start · {case.name} · run {rep + 1}/{runs}"
                          if rep >= 0 else f"cold start · warm-up · {case.name}")
                env = dict(base_env)
                fresh = None
                if case.kind == "fog-warm":
                    env["FOG_CACHE_DIR"] = str(warm)
                elif case.kind == "fog-cold":
                    fresh = Path(tempfile.mkdtemp(prefix="cold-", dir=workroot))
                    env["FOG_CACHE_DIR"] = str(fresh)
                res = run_process(case.argv, timeout=timeout, env=env)
                if fresh is not None:
                    shutil.rmtree(fresh, ignore_errors=True)
                if not res.ok:
                    case.errors.append(res.error)
                elif case.expect is not None and res.stdout.strip() != case.expect:
                    case.errors.append(f"unexpected output {res.stdout.strip()[:40]!r}")
                elif rep >= 0:
                    case.times.append(res.wall_s)
                bar.done()


def _write_csv(result: RuntimeResult, path: Path) -> None:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["bench", *(f"{k}_s" for k in RUNTIME_RUNNERS), *(t for _, _, t in RATIOS),
                    *(f"{k}_us_per_call" for k in RUNTIME_RUNNERS), "status"])
        for r in result.rows:
            def f9(v):
                return "" if v is None else f"{v:.9g}"
            w.writerow([r.name, *(f9(r.median(k)) for k in RUNTIME_RUNNERS),
                        *(f9(r.ratio(a, b)) for a, b, _ in RATIOS),
                        *(f9(result.per_call_us(r, k)) for k in RUNTIME_RUNNERS),
                        "ok" if r.ok else "; ".join(r.problems())])
        for c in result.cold:
            blanks = [""] * (len(RUNTIME_RUNNERS) * 2 + len(RATIOS) - 1)
            w.writerow([f"cold start: {c.name}", f"{c.median():.6f}" if c.median() else "",
                        *blanks, "; ".join(dict.fromkeys(c.errors)) or "ok"])
    result.files.append(path)


def print_runtime(result: RuntimeResult, console=None) -> None:
    from rich.table import Table

    from foglayer.bench._report import _t, _x, make_console

    console = console or make_console()
    table = Table(title=f"fog bench runtime: medians of {result.params['runs']} "
                        "(times measured inside each program)", title_justify="left")
    table.add_column("benchmark", style="bold")
    for k in RUNTIME_RUNNERS:
        table.add_column(RUNNERS[k].label, justify="right")
    for _, _, t in RATIOS:
        table.add_column(t, justify="right")
    table.add_column("µs/call native · fog · fog Python WASI · wasmtime", justify="right")
    table.add_column("target")
    for r in result.rows:
        per = [result.per_call_us(r, k) for k in RUNTIME_RUNNERS]
        per_text = " · ".join("—" if v is None else f"{v:.3f}" for v in per) \
            if BENCHES[r.name][2] else ""
        text, met = result.target(r)
        mark = "" if not text else f"{text} " + ("[green]met[/]" if met else "[red]missed[/]"
                                                if met is False else "?")
        if not r.ok:
            mark = "[bold red]" + "; ".join(r.problems())[:80] + "[/]"
        table.add_row(BENCHES[r.name][3], *(_t(r.median(k)) for k in RUNTIME_RUNNERS),
                      *(_x(r.ratio(a, b), warn=1.02 if b == "wasmtime" else 1.5)
                        for a, b, _ in RATIOS), per_text, mark)
    console.print(table)

    cold = Table(title="cold start: whole-process wall time, medians", title_justify="left")
    cold.add_column("what", style="bold")
    cold.add_column("median", justify="right")
    cold.add_column("min", justify="right")
    cold.add_column("note")
    by_kind = {c.kind: c for c in result.cold}
    for c in result.cold:
        m = c.median()
        note = ""
        if c.kind == "fog-warm" and m is not None:
            note = (f"target ≤ {COLD_TARGET_MS:.0f} ms "
                    + ("[green]met[/]" if m * 1e3 <= COLD_TARGET_MS else "[red]missed[/]"))
            base = next((b.median() for b in result.cold if b.name == IMPORT_WASMTIME), None)
            if base:
                over = (m - base) * 1e3
                note += (f"; +{over:.1f} ms over import wasmtime (≤ {COLD_OVER_WASMTIME_MS:.0f}: "
                         + ("[green]met[/])" if over <= COLD_OVER_WASMTIME_MS else "[red]missed[/])"))
        for fog_kind, ref_kind in (("fog-warm", "wasmtime-warm"), ("fog-cold", "wasmtime-cold")):
            ref = by_kind.get(ref_kind)
            if c.kind == fog_kind and m and ref and ref.median():
                note += f"  fog/wasmtime {m / ref.median():.2f}×"
        if c.errors:
            note = "[bold red]" + "; ".join(dict.fromkeys(c.errors))[:80] + "[/]"
        cold.add_row(c.name, "—" if m is None else f"{m * 1e3:.1f} ms",
                     "—" if not c.times else f"{min(c.times) * 1e3:.1f} ms", note)
    console.print(cold)
    env = result.env
    console.print(f"[dim]{env['cpu_model']} ({env['arch']}, {env['cpus']} CPUs); zig {env['zig']}; "
                  f"wasmtime-py {env['wasmtime_py']}; files in {env['workdir_fs']}[/]")
    for b, argv in env["builds"].items():
        console.print(f"[dim]  {b}: {argv}[/]")
    console.print(f"[dim]  fog run: {env['fog_engine']}[/]")
    console.print(f"[dim]  raw wasmtime: {env['wasmtime_engine']} (the same engine settings as "
                  "fog run, so the compute row compares like with like)[/]")
    console.print("[dim]  (e) is not fog run: foglayer's runtime with one extra HostFunction (the "
                  "trampoline every WASI call takes) vs wasmtime-py's Func, both no-ops[/]")
    for p in result.files:
        console.print(f"wrote {p}")
    if not result.ok:
        console.print("[bold red]FAILED: see the status above[/]")
