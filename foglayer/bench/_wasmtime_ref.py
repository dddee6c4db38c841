"""The reference runner: raw wasmtime-py with its BUILT-IN WASI, run as a script in a subprocess.

Used only as the reference column of the benchmarks (the product never uses the engine's
WASI). Run as ``python _wasmtime_ref.py SPEC_JSON``; it imports nothing from foglayer, so
its start-up cost is Python + wasmtime alone. SPEC keys:

- ``wasm``: the module; ``argv``: the guest's argv (argv[0] included);
- ``dirs``: ``[[host, guest], ...]`` preopened read-write;
- ``settings``: ``"default"`` (``wasmtime.Config()`` as it comes) or ``"fog"`` (as
  ``fog run``: ``memory_may_move = False``, ``memory_reservation = 4 GiB``);
- ``cache``: the file that caches the compiled module (``Module.serialize``; the harness
  keys its name by module digest, settings and wasmtime version), or null to compile every
  time; ``compile_only``: fill the cache and exit.

The guest's stdout and stderr are this process's; the exit code is the guest's (134 on a trap).
"""

import json
import os
import sys

import wasmtime

TRAP_EXIT = 134


def _config(settings: str) -> wasmtime.Config:
    cfg = wasmtime.Config()
    if settings == "fog":
        cfg.memory_may_move = False
        cfg.memory_reservation = 1 << 32
    elif settings != "default":
        raise SystemExit(f"wasmtime-ref: unknown settings {settings!r}")
    return cfg


def _module(engine: wasmtime.Engine, spec: dict) -> wasmtime.Module:
    path = spec.get("cache")
    if not path:
        return wasmtime.Module.from_file(engine, spec["wasm"])
    if os.path.exists(path):
        try:
            return wasmtime.Module.deserialize_file(engine, path)
        except wasmtime.WasmtimeError:
            pass  # stale or damaged: rebuilt below
    module = wasmtime.Module.from_file(engine, spec["wasm"])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(module.serialize())
    os.replace(tmp, path)
    return module


def main() -> int:
    spec = json.loads(sys.argv[1])
    engine = wasmtime.Engine(_config(spec.get("settings", "default")))
    module = _module(engine, spec)
    if spec.get("compile_only"):
        return 0
    wasi = wasmtime.WasiConfig()
    wasi.argv = spec["argv"]
    for host, guest in spec.get("dirs", []):
        wasi.preopen_dir(host, guest)
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
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
