"""Run runtime/noop.c with a no-op host import ``fog_bench.noop``, to measure the floor of a
host call: ``python _hostcall_probe.py MODE WASM COUNT``.

MODE ``fog``: foglayer's runtime and its fast unchecked trampoline (the path every WASI call
of ``fog run`` takes; a ``HostFunction`` beside our WASI). MODE ``func``: wasmtime-py's
``Func`` (``Linker.define_func``) beside wasmtime's built-in WASI, with ``fog run``'s engine
settings. The program prints its own JSON line with the in-program time.
"""

import sys


def main() -> int:
    mode, wasm, count = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "fog":
        from foglayer.runtime import HostFunction, Instance, load_module
        from foglayer.wasi import Wasi

        noop = HostFunction("fog_bench", "noop", "", "", lambda: None)
        with Instance(load_module(wasm), Wasi.create(["noop", count]),
                      host_functions=(noop,)) as inst:
            return inst.run().exit_code
    import wasmtime

    cfg = wasmtime.Config()
    cfg.memory_may_move = False
    cfg.memory_reservation = 1 << 32
    engine = wasmtime.Engine(cfg)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    linker.define_func("fog_bench", "noop", wasmtime.FuncType([], []), lambda: None)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["noop", count]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    try:
        linker.instantiate(store, wasmtime.Module.from_file(engine, wasm)).exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
