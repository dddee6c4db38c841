"""The benchmark harness: builds, runners, interleaved repetitions, checks and medians.

A *program* is one C program (a PolyBench kernel, speedtest1 in one mode, a micro-benchmark)
that times itself and prints JSON; its parser turns stdout into *samples* (row name ->
in-program time, check value). A *runner* is one way to run it: a native build, ``fog run``,
or raw wasmtime with its built-in WASI. Every repetition runs every program under every
runner back to back (rotating the runner order), so all columns share the machine's noise.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from foglayer._host import cpu_model
from foglayer.bench._arch import (
    EMULATION_NOTE,
    Machine,
    host_arch,
    wasmtime_cache_in_root,
    wasmtime_cache_name,
)
from foglayer.errors import FogError

# --------------------------------------------------------------------------- builds

COMMON_FLAGS = ("-O3", "-ffp-contract=off")  # Wasm has no FMA: no contraction anywhere


@dataclass(frozen=True)
class Build:
    """One compiler configuration."""

    key: str
    target: str  # "native" or "wasm32-wasi"
    flags: tuple[str, ...]

    def target_on(self, machine: Machine) -> str:
        """The zig target: native builds are for the machine the suite runs on."""
        return machine.native_target if self.target == "native" else self.target

    def argv(self, extra: Sequence[str] = (), machine: Machine | None = None) -> list[str]:
        """The compiler flags exactly as given to ``python -m ziglang cc``."""
        target = self.target_on(machine) if machine else self.target
        head = [] if target == "native" else ["-target", target]
        return [*head, *self.flags, *extra]


BUILDS = {
    "native-baseline": Build("native-baseline", "native", ("-O3", "-mcpu=baseline", "-ffp-contract=off")),
    "native-native": Build("native-native", "native", ("-O3", "-mcpu=native", "-ffp-contract=off")),
    "wasm": Build("wasm", "wasm32-wasi", ("-O3", "-msimd128", "-ffp-contract=off")),
}


# --------------------------------------------------------------------------- runners


@dataclass(frozen=True)
class Runner:
    """A column: how a build is run."""

    key: str
    label: str
    build: str  # a key of BUILDS
    kind: str  # "exe", "fog" or "wasmtime"
    env: tuple[tuple[str, str], ...] = ()  # set for this runner's processes


RUNNERS = {
    "native-baseline": Runner("native-baseline", "native -mcpu=baseline", "native-baseline", "exe"),
    "native-native": Runner("native-native", "native -mcpu=native", "native-native", "exe"),
    "fog": Runner("fog", "fog run", "wasm", "fog", (("FOG_WASI_NATIVE", "1"),)),
    # fog run with every WASI call in Python: the fallback where the native calls cannot build
    "fog-python": Runner("fog-python", "fog run, Python WASI", "wasm", "fog",
                         (("FOG_WASI_NATIVE", "0"),)),
    "wasmtime": Runner("wasmtime", "raw wasmtime", "wasm", "wasmtime"),
}
REFERENCE = "native-baseline"  # what ratios and checksums are against
SUITE_RUNNERS = ("native-baseline", "native-native", "fog", "wasmtime")

# What raw wasmtime is configured with (the script's "settings").
WASMTIME_SETTINGS = {
    "default": "wasmtime.Config() as it comes (wasmtime-py defaults), built-in WASI",
    "fog": "wasmtime.Config() with memory_may_move=False and memory_reservation=4 GiB, "
           "as `fog run` configures its engine; built-in WASI",
}
FOG_SETTINGS = ("`fog run` with no flags: wasmtime Config defaults (Cranelift opt_level=speed, "
                "SIMD on), memory_may_move=False, memory_reservation=4 GiB, no fuel, no epochs; "
                "foglayer's own WASI; AOT cache warm")
REF_SCRIPT = Path(__file__).with_name("_wasmtime_ref.py")
TRAP_EXIT = 134


@dataclass(frozen=True)
class Sample:
    time_s: float
    check: str
    label: str = ""  # a longer name for the row (speedtest1's test descriptions)


class BadOutput(Exception):
    """A program's output does not follow its contract."""


Parser = Callable[[str], dict[str, Sample]]


@dataclass
class Program:
    """One C program, run once per runner per repetition."""

    name: str
    sources: tuple[Path, ...]
    flags: tuple[str, ...]  # beyond the build's: -D, -I
    parse: Parser
    rows: tuple[str, ...]  # the row names its samples use, in table order
    group: str = ""  # the table it belongs to (a dataset, a speedtest mode)
    args: tuple[str, ...] = ()  # "{data}" becomes the host dir (native) or /data (Wasm)
    deps: tuple[Path, ...] = ()
    workdir: Path | None = None  # preopened as /data; None with fresh_workdir: a new one per run
    fresh_workdir: bool = False
    only: tuple[str, ...] | None = None  # the runners it runs under (None: all of the plan's)
    # For Wasm runners: (runner kind, module, args) -> argv, instead of fog run / the reference.
    launch: Callable[[str, Path, list[str]], list[str]] | None = None

    def runs_under(self, runner: str) -> bool:
        return self.only is None or runner in self.only


@dataclass
class Cell:
    """One row under one runner: every repetition's time and check, and what went wrong."""

    times: list[float] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatch: bool = False

    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class Row:
    name: str
    group: str
    cells: dict[str, Cell]
    ref_check: str | None = None
    label: str = ""

    def median(self, runner: str) -> float | None:
        cell = self.cells.get(runner)
        return cell.median() if cell else None

    def ratio(self, a: str, b: str) -> float | None:
        x, y = self.median(a), self.median(b)
        if x is None or y is None or y <= 0 or x <= 0:
            return None
        return x / y

    def problems(self) -> list[str]:
        out = []
        for key, cell in self.cells.items():
            label = RUNNERS[key].label if key in RUNNERS else key
            if cell.mismatch:
                out.append(f"CHECKSUM MISMATCH ({label})")
            for err in dict.fromkeys(cell.errors):  # each distinct error once
                out.append(f"{label}: {err}")
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_json(self) -> dict:
        return {
            "name": self.name, "label": self.label, "group": self.group,
            "reference_check": self.ref_check,
            "status": "ok" if self.ok else "; ".join(self.problems()),
            "runners": {k: {"median_s": c.median(), "times_s": c.times, "checks": c.checks,
                            "errors": c.errors, "checksum_mismatch": c.mismatch}
                        for k, c in self.cells.items()},
        }


def geomean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None


# --------------------------------------------------------------------------- environment


def _fs_type(path: Path) -> str:
    try:
        best, fstype = "", "unknown"
        p = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (p == parts[1] or p.startswith(parts[1].rstrip("/") + "/")) \
                    and len(parts[1]) >= len(best):
                best, fstype = parts[1], parts[2]
        return fstype
    except OSError:
        return "unknown"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def environment(runners: Sequence[str], wasmtime_settings: str, workroot: Path,
                machine: Machine | None = None) -> dict:
    """Everything a reader needs to reproduce the numbers."""
    from foglayer.toolchain import zig_version

    machine = machine or Machine(host_arch())
    used_builds = sorted({RUNNERS[r].build for r in runners})
    extra = {}
    if machine.root is not None:
        extra = {"emulated": EMULATION_NOTE, "host_arch": platform.machine(),
                 "root": str(machine.root.path), "root_python": machine.root.python}
    return {
        "cpu_model": cpu_model(),
        "arch": machine.arch,
        **extra,
        "cpus": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "zig": zig_version(),
        "wasmtime_py": _version("wasmtime"),
        "foglayer": _version("foglayer"),
        "git_commit": _git_commit(),
        "builds": {b: "python -m ziglang cc " + " ".join(BUILDS[b].argv(machine=machine))
                   for b in used_builds},
        "runners": {r: RUNNERS[r].label for r in runners},
        "fog_engine": FOG_SETTINGS,
        "wasmtime_engine": WASMTIME_SETTINGS[wasmtime_settings],
        "times": "measured inside each program (clock_gettime(CLOCK_MONOTONIC)); medians over runs",
        "notes": ["-ffp-contract=off in every build: Wasm has no fused multiply-add, so "
                  "native must not contract either, or the checksums could not be bit-identical"],
        "workdir_fs": _fs_type(workroot),
    }


# --------------------------------------------------------------------------- running


@dataclass
class Outcome:
    ok: bool
    stdout: str
    error: str = ""
    wall_s: float = 0.0


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def run_process(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
                cwd: str | None = None) -> Outcome:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return Outcome(False, "", f"timed out after {timeout:g} s", time.perf_counter() - t0)
    except OSError as e:
        return Outcome(False, "", f"cannot start: {e.strerror}", time.perf_counter() - t0)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        why = _last_line(proc.stderr) or _last_line(proc.stdout)
        code = proc.returncode
        what = f"killed by signal {-code}" if code < 0 else f"exit {code}"
        return Outcome(False, proc.stdout, f"{what}: {why}" if why else what, wall)
    return Outcome(True, proc.stdout, "", wall)


def fog_command() -> list[str]:
    """How a user starts ``fog``: the installed script beside this Python, else ``-m``."""
    script = Path(sys.executable).with_name("fog")
    return [str(script)] if script.exists() else [sys.executable, "-m", "foglayer"]


def fog_argv(wasm: Path, args: Sequence[str], dirs: Sequence[tuple[str, str]]) -> list[str]:
    return [*fog_command(), "run", *(f"--dir={h}:{g}" for h, g in dirs), str(wasm), *args]


def wasmtime_cache_path(wasm: Path, settings: str) -> Path:
    from foglayer._dirs import cache_dir

    engine = f"{_version('wasmtime')}|{platform.machine()}"
    return cache_dir("bench-wasmtime") / wasmtime_cache_name(wasm, settings, engine)


def wasmtime_argv(wasm: Path, args: Sequence[str], dirs: Sequence[Sequence],
                  settings: str, *, cache: Path | str | None, compile_only: bool = False,
                  python: str = sys.executable, script: str = str(REF_SCRIPT),
                  **spec: object) -> list[str]:
    """How to start the reference runner (``_wasmtime_ref.py``; ``spec`` adds its keys)."""
    full = {"wasm": str(wasm), "argv": [wasm.stem, *args], "dirs": [list(d) for d in dirs],
            "settings": settings, "cache": str(cache) if cache else None,
            "compile_only": compile_only, **spec}
    return [python, script, json.dumps(full)]


def run_reference(wasm: str | os.PathLike, args: Sequence[str] = (), *,
                  dirs: Sequence[tuple[str, str, bool]] = (),
                  env: dict[str, str] | None = None, stdin: bytes | None = None,
                  timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """Run ``wasm`` under raw wasmtime with its built-in WASI, in a subprocess: the
    reference the tests compare ``fog run`` with. ``argv[0]`` is the module's path;
    ``dirs`` are ``(host, guest, readonly)``; the compiled module is cached."""
    path = Path(wasm)
    with tempfile.TemporaryDirectory(prefix="fog-ref-") as td:
        files = {name: os.path.join(td, name) for name in ("stdin", "stdout", "stderr")}
        if stdin is not None:
            Path(files["stdin"]).write_bytes(stdin)
        argv = wasmtime_argv(path, [], dirs, "default",
                             cache=wasmtime_cache_path(path, "default"),
                             env=dict(env or {}),
                             stdin=files["stdin"] if stdin is not None else "",
                             stdout=files["stdout"], stderr=files["stderr"])
        spec = json.loads(argv[-1])
        spec["argv"] = [str(wasm), *map(str, args)]
        argv[-1] = json.dumps(spec)
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
        out = Path(files["stdout"]).read_bytes() if os.path.exists(files["stdout"]) else b""
        err = Path(files["stderr"]).read_bytes() if os.path.exists(files["stderr"]) else b""
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err + proc.stderr)


@dataclass
class Plan:
    """What one suite run does."""

    programs: list[Program]
    runners: tuple[str, ...] = SUITE_RUNNERS
    runs: int = 5
    timeout: float = 900.0
    wasmtime_settings: str = "default"
    progress: bool = True
    machine: Machine = field(default_factory=lambda: Machine(host_arch()))


class _Progress:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(TextColumn("[bold]{task.description:<48}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
            self._task = self._bar.add_task("", total=total)

    def __enter__(self) -> _Progress:
        if self._bar:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.__exit__(*exc)

    def doing(self, what: str) -> None:
        if self._bar:
            self._bar.update(self._task, description=what[:48])

    def done(self, n: int = 1) -> None:
        if self._bar:
            self._bar.advance(self._task, n)


def _build_all(plan: Plan, bar: _Progress) -> dict[tuple[str, str], Path | str]:
    """Compile every (program, build) pair, two at a time; a failure is kept as its message."""
    from foglayer.toolchain import CompileError, compile_c

    wanted = sorted({RUNNERS[r].build for r in plan.runners})
    jobs = [(p, BUILDS[b]) for p in plan.programs for b in wanted
            if any(p.runs_under(r) and RUNNERS[r].build == b for r in plan.runners)]
    # Programs that share sources and flags (speedtest1 in memory and on disk) share a build:
    # compile each distinct one once, never twice at the same time.
    unique: dict[tuple, tuple[Program, Build]] = {}
    for prog, build in jobs:
        unique.setdefault((prog.sources, prog.flags, prog.deps, build.key), (prog, build))

    host = _host_cpu_file()

    def one(job: tuple[Program, Build]) -> Path | str:
        prog, build = job
        # -mcpu=native output depends on the host: key its cache entry by the CPU too.
        deps = (*prog.deps, host) if "-mcpu=native" in build.flags else prog.deps
        try:
            return compile_c(prog.sources, target=build.target_on(plan.machine),
                             flags=[*build.flags, *prog.flags], deps=deps)
        except CompileError as e:
            return f"build failed: {e}"
        except OSError as e:
            return f"build failed: {e.strerror or e}"

    built: dict[tuple, Path | str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for key, res in zip(unique, pool.map(one, unique.values()), strict=True):
            prog, build = unique[key]
            bar.doing(f"build {prog.name} ({build.key})")
            built[key] = res
            bar.done()
    bar.done(len(jobs) - len(unique))  # the shared ones
    out: dict[tuple[str, str], Path | str] = {}
    for prog, build in jobs:
        out[(prog.name, build.key)] = built[(prog.sources, prog.flags, prog.deps, build.key)]
    return out


def _host_cpu_file() -> Path:
    """A file naming this host's CPU (model and feature flags), to key -mcpu=native builds."""
    from foglayer._dirs import atomic_write, cache_dir

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    lines = sorted({ln.strip() for ln in info.splitlines()
                    if ln.split(":")[0].strip() in ("model name", "flags", "Features", "CPU part")})
    text = "\n".join([platform.machine(), cpu_model(), *lines]).encode()
    path = cache_dir("bench") / f"host-cpu-{hashlib.sha256(text).hexdigest()[:16]}.txt"
    if not path.exists():
        atomic_write(path, text)
    return path


def _warm(plan: Plan, builds: dict[tuple[str, str], Path | str], bar: _Progress
          ) -> dict[tuple[str, str], str]:
    """Fill the AOT caches (fog run's and the reference's) in this process (in one process
    in the arm64 root when emulated), so every timed run starts warm; returns failures by
    (program, runner)."""
    jobs: dict[tuple[Path, str], list[tuple[str, str]]] = {}  # (wasm, kind) -> its cells
    for prog in plan.programs:
        wasm = builds.get((prog.name, "wasm"))
        for key in plan.runners:
            kind = RUNNERS[key].kind
            if kind == "exe" or not prog.runs_under(key):
                continue
            if isinstance(wasm, Path):
                jobs.setdefault((wasm, kind), []).append((prog.name, key))
            else:
                bar.done()
    if plan.machine.root is not None:
        results = _aot_in_root(plan, list(jobs), bar, lambda job: len(jobs[job]))
    else:
        results = {}
        for job, cells in jobs.items():
            bar.doing(f"AOT compile {cells[0][0]} ({RUNNERS[cells[0][1]].label})")
            results[job] = _aot(*job, plan.wasmtime_settings)
            bar.done(len(cells))
    return {cell: f"AOT compile failed: {why}"
            for job, why in results.items() if why for cell in jobs[job]}


def _aot_in_root(plan: Plan, jobs: list[tuple[Path, str]], bar: _Progress,
                 weight: Callable[[tuple[Path, str]], int]) -> dict[tuple[Path, str], str | None]:
    """The AOT compiles of ``jobs`` in one aarch64 process in the arm64 root (its caches)."""
    root = plan.machine.root
    assert root is not None
    spec = [{"wasm": str(w), "kind": k, "settings": plan.wasmtime_settings,
             "cache": wasmtime_cache_in_root(root, w, plan.wasmtime_settings)
             if k == "wasmtime" else None} for w, k in jobs]
    argv = root.command(["python", "-c", "from foglayer.bench._harness import aot_lines; "
                         "aot_lines()", json.dumps(spec)],
                        binds=sorted({str(w.parent) for w, _ in jobs}))
    results: dict[tuple[Path, str], str | None] = {}
    if not jobs:
        return results
    bar.doing(f"AOT compile on aarch64 (emulated): {jobs[0][0].stem}")
    # stderr to a file: a pipe left unread while stdout is read could fill and block the child
    with tempfile.TemporaryFile("w+") as errors, \
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                i, why = json.loads(line)
                job = jobs[i]
            except (ValueError, TypeError, IndexError):
                continue
            results[job] = why
            bar.done(weight(job))
            if i + 1 < len(jobs):
                bar.doing(f"AOT compile on aarch64 (emulated): {jobs[i + 1][0].stem}")
        proc.wait()
        errors.seek(0)
        err = errors.read()
    for job in jobs:  # the process died half-way
        if job not in results:
            results[job] = _last_line(err) or f"exit {proc.returncode}"
            bar.done(weight(job))
    return results


def aot_lines() -> None:
    """In the arm64 root: the AOT compiles listed in ``sys.argv[1]``, one JSON line each
    (``[index, error or null]``), as each is done."""
    for i, job in enumerate(json.loads(sys.argv[1])):
        why = _aot(Path(job["wasm"]), job["kind"], job["settings"], job["cache"])
        print(json.dumps([i, why]), flush=True)


def _aot(wasm: Path, kind: str, settings: str, cache: str | None = None) -> str | None:
    """Compile ``wasm`` into the cache ``kind`` ("fog" or "wasmtime") uses (the reference's:
    ``cache``, or its usual file); None when fine."""
    try:
        if kind == "fog":
            from foglayer.runtime import compile_ahead

            compile_ahead(wasm)
            return None
        cache = Path(cache) if cache else wasmtime_cache_path(wasm, settings)
        if cache.exists():
            return None
        from foglayer.bench import _wasmtime_ref as ref

        ref.compile_to_cache(str(wasm), settings, str(cache))
        return None
    except (FogError, ValueError, OSError) as e:
        return _last_line(str(e)) or type(e).__name__


def _one_run(plan: Plan, prog: Program, runner: Runner, binary: Path, workroot: Path) -> Outcome:
    tmp: Path | None = None
    if prog.fresh_workdir:
        tmp = Path(tempfile.mkdtemp(prefix=f"{runner.key}-", dir=workroot))
    data = tmp or prog.workdir
    try:
        if plan.machine.root is not None:
            return run_process(_argv_in_root(plan, prog, runner, binary, data),
                               timeout=plan.timeout)
        if runner.kind == "exe":
            args = [a.replace("{data}", str(data)) for a in prog.args]
            return run_process([str(binary), *args], timeout=plan.timeout,
                               cwd=str(data) if data else None)
        args = [a.replace("{data}", "/data") for a in prog.args]
        dirs = [(str(data), "/data")] if data else []
        if prog.launch is not None:
            return run_process(prog.launch(runner.kind, binary, args), timeout=plan.timeout)
        if runner.kind == "fog":
            env = {**os.environ, **dict(runner.env)} if runner.env else None
            return run_process(fog_argv(binary, args, dirs), timeout=plan.timeout, env=env)
        cache = wasmtime_cache_path(binary, plan.wasmtime_settings)
        return run_process(wasmtime_argv(binary, args, dirs, plan.wasmtime_settings, cache=cache),
                           timeout=plan.timeout)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _argv_in_root(plan: Plan, prog: Program, runner: Runner, binary: Path,
                  data: Path | None) -> list[str]:
    """The host command that runs ``prog`` under ``runner`` in the arm64 root: the same
    processes as on the host, on its aarch64 Python, wasmtime and C library."""
    root = plan.machine.root
    assert root is not None
    if prog.launch is not None:
        raise FogError(f"{prog.name}: a custom launch cannot run in the arm64 root")
    binds = [binary.parent, *([data] if data else [])]
    if runner.kind == "exe":
        args = [a.replace("{data}", str(data)) for a in prog.args]
        return root.command([binary, *args], binds=binds, cwd=data)
    args = [a.replace("{data}", "/data") for a in prog.args]
    dirs = [(str(data), "/data")] if data else []
    if runner.kind == "fog":
        return root.fog(*fog_argv(binary, args, dirs)[len(fog_command()):], binds=binds,
                        env=dict(runner.env))
    cache = wasmtime_cache_in_root(root, binary, plan.wasmtime_settings)
    return root.command(wasmtime_argv(binary, args, dirs, plan.wasmtime_settings, cache=cache,
                                      python="python", script=root.inside(REF_SCRIPT)),
                        binds=binds)


def _stage(builds: dict[tuple[str, str], Path | str], workroot: Path
           ) -> dict[tuple[str, str], Path | str]:
    """The builds copied below ``workroot``: the one directory bound into the arm64 root
    (the build cache itself could shadow the root's own cache dir, at the same path there)."""
    bins = workroot / "bin"
    bins.mkdir(exist_ok=True)
    out: dict[tuple[str, str], Path | str] = {}
    for key, b in builds.items():
        if isinstance(b, Path):
            dest = bins / b.name
            if not dest.exists():
                shutil.copy2(b, dest)
            b = dest
        out[key] = b
    return out


def execute(plan: Plan, workroot: Path) -> list[Row]:
    """Build, warm the caches, run every repetition; the rows in program/row order."""
    rows: dict[tuple[str, str], Row] = {}
    for prog in plan.programs:
        for r in prog.rows:
            rows[(prog.name, r)] = Row(r, prog.group, {k: Cell() for k in plan.runners})
    wanted_builds = {RUNNERS[r].build for r in plan.runners}
    wasm_runners = [r for r in plan.runners if RUNNERS[r].kind != "exe"]
    total = (len(plan.programs) * len(wanted_builds)
             + len(plan.programs) * len(wasm_runners)
             + plan.runs * len(plan.programs) * len(plan.runners))
    with _Progress(plan.progress, total) as bar:
        builds = _build_all(plan, bar)
        if plan.machine.root is not None:
            builds = _stage(builds, workroot)
        broken = _warm(plan, builds, bar)
        for prog in plan.programs:
            for key in filter(prog.runs_under, plan.runners):
                b = builds[(prog.name, RUNNERS[key].build)]
                why = b if isinstance(b, str) else broken.get((prog.name, key))
                if why:
                    for r in prog.rows:
                        rows[(prog.name, r)].cells[key].errors.append(why)
        n = len(plan.runners)
        for rep in range(plan.runs):
            order = [plan.runners[(i + rep) % n] for i in range(n)]
            for prog in plan.programs:
                for key in filter(prog.runs_under, order):
                    runner = RUNNERS[key]
                    bar.doing(f"{prog.name} · {runner.label} · run {rep + 1}/{plan.runs}")
                    binary = builds[(prog.name, runner.build)]
                    if isinstance(binary, Path) and (prog.name, key) not in broken:
                        _record(prog, key, _one_run(plan, prog, runner, binary, workroot), rows)
                    bar.done()
    for row in rows.values():
        _check(row)
    return list(rows.values())


def _record(prog: Program, key: str, res: Outcome, rows: dict[tuple[str, str], Row]) -> None:
    samples: dict[str, Sample] = {}
    error = res.error
    if res.ok:  # a run that failed half-way reports no times at all
        try:
            samples = prog.parse(res.stdout)
        except BadOutput as e:
            error = f"bad output: {e}"
    for r in prog.rows:
        row = rows[(prog.name, r)]
        cell = row.cells[key]
        s = samples.get(r)
        if s is not None:
            cell.times.append(s.time_s)
            cell.checks.append(s.check)
            row.label = row.label or s.label
        else:
            cell.errors.append(error or "no result in the output")


def _check(row: Row) -> None:
    """Every check value of every runner must equal the reference's (native -mcpu=baseline)."""
    ref = row.cells.get(REFERENCE)
    first = (ref.checks[0] if ref and ref.checks
             else next((c.checks[0] for c in row.cells.values() if c.checks), None))
    row.ref_check = first
    for cell in row.cells.values():
        if any(c != first for c in cell.checks):
            cell.mismatch = True


# --------------------------------------------------------------------------- parsing helpers


def json_lines(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            raise BadOutput(f"not JSON: {line[:80]!r}") from None
        if not isinstance(obj, dict):
            raise BadOutput(f"not a JSON object: {line[:80]!r}")
        out.append(obj)
    return out


def sample(obj: dict, check_key: str) -> Sample:
    t, c = obj.get("time_s"), obj.get(check_key)
    if not isinstance(t, int | float) or not isinstance(c, str):
        raise BadOutput(f"missing time_s or {check_key} in {json.dumps(obj)[:80]}")
    return Sample(float(t), c)


def make_workroot() -> Path:
    return Path(tempfile.mkdtemp(prefix="fog-bench-"))


def require_compiler() -> None:
    """A one-line error when the C compiler is missing (before anything runs)."""
    from foglayer.toolchain import zig_version

    zig_version()


def out_dir(suite: str, out: str | os.PathLike | None) -> Path:
    if out is not None:
        d = Path(out)
    else:
        d = Path("results") / f"{suite}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FogError(f"{d}: cannot create the results directory: {e.strerror}") from None
    return d
