"""Run runtime/noop.c with a no-op host import ``fog_bench.noop`` under foglayer's runtime,
to measure the floor of a host call: ``python _hostcall_probe.py WASM COUNT``.

It takes foglayer's fast unchecked trampoline (the path every WASI call of ``fog run``
takes; a ``HostFunction`` beside our WASI). The reference side (wasmtime-py's ``Func``) is
the reference runner's ``noop_import``. The program prints its own JSON line with the
in-program time.
"""

import sys


def main() -> int:
    from foglayer.runtime import HostFunction, Instance, load_module
    from foglayer.wasi import Wasi

    wasm, count = sys.argv[1], sys.argv[2]
    noop = HostFunction("fog_bench", "noop", "", "", lambda: None)
    with Instance(load_module(wasm), Wasi.create(["noop", count]),
                  host_functions=(noop,)) as inst:
        return inst.run().exit_code


if __name__ == "__main__":
    sys.exit(main())
