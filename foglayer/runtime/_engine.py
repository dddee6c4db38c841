"""Engine settings, and the AOT cache of compiled modules keyed by digest and settings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import wasmtime

from foglayer.runtime import _ffi
from foglayer.runtime._errors import ModuleError
from foglayer.runtime._limits import Limits

WASMTIME_VERSION = "50.0.1"  # pinned in pyproject; part of every cache key


class EngineSettings:
    """What changes the machine code: two settings that differ never share a cache entry.

    Immutable and hashable (engines are shared per settings)."""

    __slots__ = ("consume_fuel", "epoch_interruption", "opt_level", "simd")
    _FIELDS = __slots__
    consume_fuel: bool
    epoch_interruption: bool
    opt_level: str
    simd: bool

    def __init__(self, consume_fuel: bool = False, epoch_interruption: bool = False,
                 opt_level: str = "speed", simd: bool = True) -> None:
        for name, value in zip(self._FIELDS, (consume_fuel, epoch_interruption, opt_level, simd),
                               strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"EngineSettings are immutable: cannot set {name}")

    def _tuple(self) -> tuple:
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EngineSettings) and self._tuple() == other._tuple()

    def __hash__(self) -> int:
        return hash(self._tuple())

    def __repr__(self) -> str:
        return "EngineSettings(" + ", ".join(f"{f}={getattr(self, f)!r}"
                                             for f in self._FIELDS) + ")"

    def key(self) -> str:
        text = (repr(sorted(zip(self._FIELDS, self._tuple(), strict=True))) + WASMTIME_VERSION
                + os.uname().machine)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def config(self) -> wasmtime.Config:
        cfg = wasmtime.Config()
        cfg.consume_fuel = self.consume_fuel
        cfg.epoch_interruption = self.epoch_interruption
        cfg.cranelift_opt_level = self.opt_level
        cfg.wasm_simd = self.simd
        # WASI keeps a view of linear memory: its base must never move when it grows.
        cfg.memory_may_move = False
        cfg.memory_reservation = 1 << 32
        return cfg


def settings_for(limits: Limits, *, stats: bool = False, stoppable: bool = False,
                 simd: bool = True) -> EngineSettings:
    """The engine settings an instance with ``limits`` needs: fuel metering for a fuel limit
    (or ``stats``, which reports fuel), epochs for a timeout or when it must be stoppable
    while it computes (a node's instances). Epochs cost compute, so a plain run has none."""
    return EngineSettings(consume_fuel=bool(limits.fuel) or stats,
                          epoch_interruption=bool(limits.timeout) or stoppable, simd=simd)


_ENGINES: dict[EngineSettings, wasmtime.Engine] = {}


def engine_for(settings: EngineSettings) -> wasmtime.Engine:
    eng = _ENGINES.get(settings)
    if eng is None:
        eng = _ENGINES[settings] = wasmtime.Engine(settings.config())
    return eng


class LoadedModule:
    """A compiled module with the digest of its bytes (what snapshots and the cluster name)."""

    __slots__ = ("module", "digest", "path", "settings", "from_cache", "_imports", "_exports")

    def __init__(self, module: wasmtime.Module, digest: str, path: str,
                 settings: EngineSettings, from_cache: bool) -> None:
        self.module = module
        self.digest = digest  # sha256 hex of the .wasm bytes
        self.path = path
        self.settings = settings
        self.from_cache = from_cache
        # A module's imports and exports never change: listed once (each listing crosses the
        # C API once per item, which instantiating a thousand instances would pay a thousand
        # times).
        self._imports: list[tuple[str, str]] | None = None
        self._exports: list[str] | None = None

    def __repr__(self) -> str:
        return (f"LoadedModule(path={self.path!r}, digest={self.digest[:12]!r}, "
                f"settings={self.settings!r}, from_cache={self.from_cache})")

    def imports(self) -> list[tuple[str, str]]:
        if self._imports is None:
            self._imports = [(i.module, i.name or "") for i in self.module.imports]
        return self._imports

    def exports(self) -> list[str]:
        if self._exports is None:
            self._exports = [e.name for e in self.module.exports]
        return self._exports


def _read(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ModuleError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModuleError(f"{path}: is a directory, not a .wasm module") from None
    except OSError as e:
        raise ModuleError(f"{path}: cannot read: {e.strerror}") from None


def _compile(engine: wasmtime.Engine, wasm: bytes, where: str) -> wasmtime.Module:
    if wasm[:4] != b"\0asm":
        raise ModuleError(f"{where}: not a WebAssembly module (bad magic number)")
    try:
        return wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as e:
        first = str(e).strip().splitlines()
        detail = "; ".join(ln.strip() for ln in first[:2]) if first else "invalid module"
        raise ModuleError(f"{where}: invalid WebAssembly module: {detail}") from None


def cache_path(digest: str, settings: EngineSettings) -> Path:
    """Where the AOT cache keeps the machine code of module ``digest`` under ``settings``."""
    from foglayer.runtime import _cache

    return _cache.entry_path(_cache.root(), digest, settings.key())


def load_module(
    source: str | os.PathLike | bytes,
    settings: EngineSettings = EngineSettings(),
    *,
    use_cache: bool = True,
    name: str | None = None,
) -> LoadedModule:
    """Load a module, from the AOT cache when an entry for these bytes and settings exists.

    An entry is authenticated (a MAC under a per-user secret, bound to the module's digest
    and the settings) before its machine code is used; anything else is rebuilt.
    """
    from foglayer.runtime import _cache

    if isinstance(source, bytes | bytearray):
        wasm, where = bytes(source), name or "<bytes>"
    else:
        wasm, where = _read(source), os.fspath(source)
    digest = hashlib.sha256(wasm).hexdigest()
    engine = engine_for(settings)
    if not use_cache:
        return LoadedModule(_compile(engine, wasm, where), digest, where, settings, False)
    key = settings.key()
    artifact = _cache.load(digest, key)
    if artifact is not None:
        try:
            return LoadedModule(_ffi.deserialize(engine, artifact), digest, where, settings,
                                True)
        except wasmtime.WasmtimeError:
            _cache.drop(digest, key)  # stale: made by another build of the engine
    module = _compile(engine, wasm, where)
    try:
        _cache.store(digest, key, module.serialize())
    except OSError:
        pass  # a read-only cache only costs a recompile next time
    return LoadedModule(module, digest, where, settings, False)


VARIANTS = (
    EngineSettings(),
    EngineSettings(consume_fuel=True),
    EngineSettings(epoch_interruption=True),
    EngineSettings(consume_fuel=True, epoch_interruption=True),
)


def compile_ahead(source: str | os.PathLike, *, output: str | os.PathLike | None = None,
                  all_variants: bool = False) -> list[str]:
    """Fill the AOT cache for ``source``; returns one report line per variant."""
    import time

    from foglayer._dirs import atomic_write

    lines = []
    for settings in VARIANTS if all_variants else VARIANTS[:1]:
        t0 = time.perf_counter()
        mod = load_module(source, settings)
        what = "cached" if mod.from_cache else f"compiled in {time.perf_counter() - t0:.2f} s"
        flags = [n for n, on in (("fuel", settings.consume_fuel),
                                 ("epochs", settings.epoch_interruption)) if on]
        lines.append(f"{mod.path}: {what} [{'+'.join(flags) or 'plain'}] -> "
                     f"{cache_path(mod.digest, settings)}")
        if output and settings == VARIANTS[0]:
            atomic_write(Path(output), cache_path(mod.digest, settings).read_bytes())
    return lines
