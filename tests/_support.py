"""Shared helpers for the WASI test-suite.

Two runtimes run the C programs in ``tests/programs``:

* ``ref``  -- wasmtime-py's built-in WASI (the reference; used only in tests), run in a
  subprocess so that ``proc_exit``/traps cannot disturb pytest;
* ``ours`` -- ``fog run`` (foglayer's own WASI preview 1), also a subprocess.

Both are called the same way: ``run(wasm, args, dirs=[(host, guest, readonly)], env={})``
and return a :class:`Run` (exit code, stdout, stderr).

Every test builds its own fixture tree under ``tmp_path`` (see :func:`make_world`):

    <root>/sandbox/   preopened read-write as /sandbox
    <root>/ro/        preopened read-only  as /ro
    <root>/outside/   never preopened: holds the canary files the sandbox tests guard
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PROGRAMS = TESTS / "programs"

# Exit status used for a trap (anything but proc_exit), as the wasmtime CLI does on Unix:
# 128 + SIGABRT.
TRAP_EXIT = 134
RUN_TIMEOUT = 60

CANARY = b"CANARY-SECRET: this file lives outside every preopen\n"
HELLO = b"hello world"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def describe(self) -> str:
        return f"exit={self.code}\n--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}"


Dirs = Sequence[tuple[str | os.PathLike, str, bool]]
Runner = Callable[..., Run]


# --------------------------------------------------------------------------- building


@functools.cache
def _build(name: str) -> Path:
    from foglayer.toolchain import compile_c

    return compile_c([PROGRAMS / f"{name}.c"], target="wasm32-wasi", flags=["-O2"])


@pytest.fixture(scope="session")
def build() -> Callable[[str], Path]:
    """``build(name)`` compiles ``tests/programs/<name>.c`` (cached) and returns the .wasm."""
    return _build


# --------------------------------------------------------------------------- reference

def run_ref(
    wasm: str | os.PathLike,
    args: Sequence[str] = (),
    dirs: Dirs = (),
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
) -> Run:
    """Run ``wasm`` under wasmtime's built-in WASI (the benchmarks' reference runner)."""
    from foglayer.bench import run_reference

    proc = run_reference(wasm, args, dirs=[(str(h), g, bool(ro)) for h, g, ro in dirs],
                         env=dict(env or {}), stdin=stdin, timeout=RUN_TIMEOUT)
    return Run(proc.returncode, proc.stdout.decode(errors="replace"),
               proc.stderr.decode(errors="replace"))


# --------------------------------------------------------------------------- ours


def _fog_cmd() -> list[str]:
    exe = shutil.which("fog") or str(Path(sys.executable).with_name("fog"))
    if Path(exe).exists():
        return [exe]
    return [sys.executable, "-m", "foglayer.cli"]


def run_ours(
    wasm: str | os.PathLike,
    args: Sequence[str] = (),
    dirs: Dirs = (),
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    *,
    native: bool = True,
) -> Run:
    """Run ``wasm`` under ``fog run`` (foglayer's own WASI), with the hot calls in C
    (``native``, the default path; a failed build fails the test) or all in Python."""
    cmd = [*_fog_cmd(), "run"]
    for host, guest, ro in dirs:
        cmd += ["--dir", f"{host}:{guest}" + (":ro" if ro else "")]
    for k, v in (env or {}).items():
        cmd += ["--env", f"{k}={v}"]
    cmd += [str(wasm), *map(str, args)]
    proc = subprocess.run(
        cmd,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        timeout=RUN_TIMEOUT,
        env={**os.environ, "FOG_WASI_NATIVE": "1" if native else "0"},
    )
    return Run(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


def run_ours_python(*args, **kwargs) -> Run:
    """``fog run`` with every WASI call in Python (``FOG_WASI_NATIVE=0``)."""
    return run_ours(*args, **kwargs, native=False)


RUNNERS: dict[str, Runner] = {"ref": run_ref, "ours": run_ours, "ours-python": run_ours_python}
# ``ours`` on both of its WASI paths: the hot calls in C, and the pure-Python fallback.
RUNTIMES = ["ref", "ours", "ours-python"]


@pytest.fixture(params=RUNTIMES)
def runtime(request) -> Runner:
    """Parametrizes a test over both runtimes."""
    return RUNNERS[request.param]


@pytest.fixture
def ours() -> Runner:
    return run_ours


# --------------------------------------------------------------------------- fixture trees


@dataclass(frozen=True)
class World:
    root: Path

    @property
    def sandbox(self) -> Path:
        return self.root / "sandbox"

    @property
    def ro(self) -> Path:
        return self.root / "ro"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    @property
    def dirs(self) -> list[tuple[Path, str, bool]]:
        """The preopens: /sandbox read-write (fd 3), /ro read-only (fd 4)."""
        return [(self.sandbox, "/sandbox", False), (self.ro, "/ro", True)]

    def snapshot(self) -> dict[str, tuple]:
        return snapshot_tree(self.root)


def make_world(root: Path) -> World:
    """Create the standard fixture tree under ``root`` (which must not exist yet)."""
    w = World(root)
    sb, ro, out = w.sandbox, w.ro, w.outside
    for d in (sb / "sub" / "deeper", sb / "empty", ro / "rodir", ro / "emptydir", out / "secretdir"):
        d.mkdir(parents=True)
    (sb / "hello.txt").write_bytes(HELLO)
    (sb / "sub" / "a.txt").write_bytes(b"aaa\n")
    (sb / "sub" / "b.txt").write_bytes(b"bbbbbb\n")
    (sb / "sub" / "deeper" / "c.txt").write_bytes(b"c\n")
    (sb / "victim.txt").write_bytes(b"victim\n")
    (ro / "readme.txt").write_bytes(b"read only\n")
    (ro / "rodir" / "keep.txt").write_bytes(b"keep\n")
    (out / "canary.txt").write_bytes(CANARY)
    (out / "secretdir" / "inner.txt").write_bytes(CANARY)
    # Escape hatches a hostile host tree could contain; the runtime must not follow them out.
    os.symlink("../outside/canary.txt", sb / "esc_rel")
    os.symlink("../outside", sb / "esc_rel_dir")
    os.symlink(str(out / "canary.txt"), sb / "esc_abs")
    os.symlink(str(out), sb / "esc_abs_dir")
    os.symlink("sub/../../outside/canary.txt", sb / "esc_deep")
    os.symlink("loop_b", sb / "loop_a")
    os.symlink("loop_a", sb / "loop_b")
    os.symlink("self_loop", sb / "self_loop")
    # Harmless in-tree links.
    os.symlink("hello.txt", sb / "link_hello")
    os.symlink("sub", sb / "link_sub")
    os.symlink("does-not-exist", sb / "dangling")
    return w


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "world")


def snapshot_tree(root: Path) -> dict[str, tuple]:
    """Names, types, contents and symlink targets under ``root`` (not times/inodes).

    Absolute symlink targets under ``root`` are rewritten to ``<ROOT>/...`` so that two
    copies of the same world compare equal.
    """
    root = Path(root)
    snap: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                target = os.readlink(p).replace(str(root), "<ROOT>")
                snap[rel] = ("symlink", target)
            elif p.is_dir():
                snap[rel] = ("dir",)
            elif p.is_file():
                snap[rel] = ("file", p.read_bytes())
            else:
                snap[rel] = ("other",)
    return snap


def snapshot_with_stat(root: Path) -> dict[str, tuple]:
    """Like :func:`snapshot_tree` plus mode and mtime (to prove nothing was touched)."""
    snap = snapshot_tree(root)
    out = {}
    for rel, val in snap.items():
        st = os.lstat(Path(root, rel))
        out[rel] = (*val, st.st_mode, st.st_mtime_ns, st.st_nlink)
    return out


# --------------------------------------------------------------------------- per-function tests

ENV = {"FOG_TEST_GREETING": "hi there", "FOG_TEST_EQ": "a=b=c", "FOG_TEST_EMPTY": ""}


@dataclass(frozen=True)
class Outcome:
    """One program run: its result and the world it ran in (inspect files afterwards)."""

    run: Run
    world: World

    @property
    def lines(self) -> list[str]:
        return self.run.lines

    def line(self, prefix: str) -> str:
        """The single stdout line starting with ``prefix``."""
        found = [ln for ln in self.lines if ln.startswith(prefix)]
        assert len(found) == 1, f"expected one line starting {prefix!r}, got {found}\n{self.run.describe()}"
        return found[0]

    def expect(self, *expected: str) -> None:
        """Each expected line appears in stdout, in this order."""
        lines = self.lines
        pos = 0
        missing = []
        for want in expected:
            try:
                pos = lines.index(want, pos) + 1
            except ValueError:
                near = [ln for ln in lines if ln.split(" -> ")[0] == want.split(" -> ")[0]]
                missing.append(f"  want {want!r}" + (f"\n   got {near}" if near else ""))
        assert not missing, "missing/out-of-order lines:\n" + "\n".join(missing) + "\n" + self.run.describe()


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime_name(request) -> str:
    """Module-scoped runtime parameter: each test module runs its program once per runtime."""
    return request.param


def run_program(
    runtime_name: str,
    program: str,
    args: Sequence[str],
    root: Path,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Build ``program``, make a fresh world under ``root`` and run it there."""
    world = make_world(Path(root) / "world")
    args = [a.replace("{outside}", str(world.outside)) for a in args]
    run = RUNNERS[runtime_name](_build(program), args, world.dirs, ENV if env is None else env)
    return Outcome(run, world)


@pytest.fixture(scope="module")
def program_run(runtime_name, tmp_path_factory):
    """``program_run(program, *args)`` runs once per module and runtime (cached)."""
    cache: dict[tuple, Outcome] = {}

    def get(program: str, *args: str) -> Outcome:
        key = (program, args)
        if key not in cache:
            cache[key] = run_program(
                runtime_name, program, args, tmp_path_factory.mktemp(program)
            )
        return cache[key]

    return get
