"""The reference runner: raw wasmtime-py with its BUILT-IN WASI, run as a script in a subprocess.

The one module of foglayer besides the runtime that imports wasmtime: the benchmarks and
the tests compare against it (the product never uses the engine's WASI). Run as
``python _wasmtime_ref.py SPEC_JSON``; it imports nothing from foglayer, so its start-up
cost is Python + wasmtime alone. SPEC keys:

- ``wasm``: the module; ``argv``: the guest's argv (argv[0] included); ``env``: ``{k: v}``;
- ``dirs``: ``[[host, guest], ...]`` preopened read-write, or ``[host, guest, readonly]``;
- ``stdin``/``stdout``/``stderr``: files for the guest's stdio (default: this process's);
- ``settings``: ``"default"`` (``wasmtime.Config()`` as it comes) or ``"fog"`` (as
  ``fog run``: ``memory_may_move = False``, ``memory_reservation = 4 GiB``);
- ``cache``: the file that caches the compiled module (``Module.serialize``; the harness
  keys its name by module digest, settings and wasmtime version), or null to compile every
  time; ``compile_only``: fill the cache and exit;
- ``noop_import``: define ``fog_bench.noop`` as a wasmtime-py ``Func`` that does nothing
  (the floor of a host call, against foglayer's unchecked trampolines).

The exit code is the guest's (134 on a trap).
"""

import json
import os
import sys

import wasmtime

TRAP_EXIT = 134


def config(settings: str) -> wasmtime.Config:
    cfg = wasmtime.Config()
    if settings == "fog":
        cfg.memory_may_move = False
        cfg.memory_reservation = 1 << 32
    elif settings != "default":
        raise SystemExit(f"wasmtime-ref: unknown settings {settings!r}")
    return cfg


def load(engine: wasmtime.Engine, wasm: str, cache: str | None) -> wasmtime.Module:
    """The compiled module, from (or into) the ``cache`` file when one is given."""
    if not cache:
        return wasmtime.Module.from_file(engine, wasm)
    if os.path.exists(cache):
        try:
            return wasmtime.Module.deserialize_file(engine, cache)
        except wasmtime.WasmtimeError:
            pass  # stale or damaged: rebuilt below
    module = wasmtime.Module.from_file(engine, wasm)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    fd, tmp = _mkstemp(cache)
    with os.fdopen(fd, "wb") as f:
        f.write(module.serialize())
    os.replace(tmp, cache)
    return module


def _mkstemp(path: str) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))


def compile_to_cache(wasm: str, settings: str, cache: str) -> None:
    """Fill ``cache`` for ``wasm`` (in this process); raises on a bad module."""
    try:
        load(wasmtime.Engine(config(settings)), wasm, cache)
    except wasmtime.WasmtimeError as e:
        raise ValueError(str(e).strip().splitlines()[0] if str(e).strip() else "invalid") from None


def _wasi(spec: dict) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = spec["argv"]
    wasi.env = sorted(spec.get("env", {}).items())
    for entry in spec.get("dirs", []):
        host, guest = entry[0], entry[1]
        readonly = len(entry) > 2 and entry[2]
        wasi.preopen_dir(host, guest, not readonly)
    if spec.get("stdin"):
        wasi.stdin_file = spec["stdin"]
    for name in ("stdout", "stderr"):
        if spec.get(name):
            setattr(wasi, f"{name}_file", spec[name])
        else:
            getattr(wasi, f"inherit_{name}")()
    return wasi


def main() -> int:
    spec = json.loads(sys.argv[1])
    engine = wasmtime.Engine(config(spec.get("settings", "default")))
    module = load(engine, spec["wasm"], spec.get("cache"))
    if spec.get("compile_only"):
        return 0
    store = wasmtime.Store(engine)
    store.set_wasi(_wasi(spec))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    if spec.get("noop_import"):
        linker.define_func("fog_bench", "noop", wasmtime.FuncType([], []), lambda: None)
    try:
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        sys.stderr.write(f"wasmtime-ref: trap: {lines[-1] if lines else 'trap'}\n")
        return TRAP_EXIT
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    sys.exit(main())
