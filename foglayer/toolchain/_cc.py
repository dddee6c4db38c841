"""Compile C with ``python -m ziglang cc``; outputs are cached by inputs, flags and compiler."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from foglayer._dirs import cache_dir
from foglayer.errors import FogError

WASM_TARGET = "wasm32-wasi"
# Linked into every Wasm program: vector memcmp/strlen/strcspn/memchr/strchr in place of Zig's
# byte-at-a-time ones (see the file; weak, so a program's own definitions win).
WASM_STRING = Path(__file__).with_name("wasm_string.c")


class CompileError(FogError):
    """The compiler is missing or rejected a program."""


@functools.cache
def zig_version() -> str:
    import subprocess  # not at import: every fog run loads this module, few compile

    try:
        out = subprocess.run(
            [sys.executable, "-m", "ziglang", "version"],
            capture_output=True, text=True, check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        raise CompileError(
            "C compiler not found: the PyPI package 'ziglang' is needed (pip install ziglang)"
        ) from e
    return out.stdout.strip()


def _digest(sources: Sequence[Path], deps: Iterable[Path], argv: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(zig_version().encode())
    h.update("\0".join(argv).encode())
    for p in [*sources, *sorted(deps)]:
        h.update(str(p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:32]


def compile_c(
    sources: Sequence[str | os.PathLike],
    *,
    target: str = WASM_TARGET,
    flags: Sequence[str] = ("-O2",),
    deps: Iterable[str | os.PathLike] = (),
    out: str | os.PathLike | None = None,
    shared: bool = False,
) -> Path:
    """Compile ``sources`` for ``target`` (``wasm32-wasi``, ``native`` or a host triple such
    as ``x86_64-linux-gnu``) and return the output; ``shared`` makes a shared library.
    A Wasm program is linked with :data:`WASM_STRING` (faster libc string routines).

    ``deps`` are extra files (headers) whose contents key the cache. The result is cached
    under the user cache dir (``$FOG_CACHE_DIR``); a hit costs one hash of the inputs.
    """
    import subprocess

    srcs = [Path(s) for s in sources]
    for s in srcs:
        if not s.is_file():
            raise CompileError(f"{s}: no such C source file")
    if target.startswith("wasm"):
        srcs.append(WASM_STRING)
    dep_paths = [Path(d) for d in deps]
    # Headers next to the sources always key the cache, so an edit to one rebuilds.
    for d in {s.parent for s in srcs}:
        dep_paths.extend(p for p in d.glob("*.h") if p not in dep_paths)
    argv = ["-target", target, *flags] if target != "native" else list(flags)
    if shared:
        argv += ["-shared", "-fPIC"]
    key = _digest(srcs, dep_paths, argv)
    suffix = ".wasm" if target.startswith("wasm") else ".so" if shared else ".exe"
    cached = cache_dir("builds") / f"{srcs[0].stem}-{key}{suffix}"
    if not cached.exists():
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        cmd = [sys.executable, "-m", "ziglang", "cc", *argv, *map(str, srcs), "-o", str(tmp)]
        if not target.startswith("wasm"):
            cmd.append("-lm")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 and WASM_STRING in srcs and "duplicate symbol" in proc.stderr:
            # The program defines one of those routines itself: it keeps all of its own.
            cmd.remove(str(WASM_STRING))
            proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip())
            raise CompileError(f"{srcs[0]}: compile failed: {first}")
        os.replace(tmp, cached)
    if out is None:
        return cached
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    tmp.write_bytes(cached.read_bytes())
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)
    return dest
