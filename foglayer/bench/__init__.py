"""The paper's evaluation: PolyBench, SQLite's speedtest1 and runtime micro-benchmarks.

Every suite builds its C programs with one compiler (``python -m ziglang cc``) for native
(``-mcpu=baseline`` and ``-mcpu=native``) and ``wasm32-wasi``, runs them side by side in one
run (native, ``fog run``, raw wasmtime with its built-in WASI), interleaved per repetition,
compares every Wasm checksum with native's, and reports medians, ratios and geometric means.

Public API:

- :func:`polybench` – ``fog bench polybench``; :data:`KERNELS`, :data:`DATASETS`.
- :func:`speedtest` – ``fog bench speedtest``; :data:`SPEEDTEST_TESTS`.
- :func:`runtime` – ``fog bench runtime`` (issue 9: WASI call costs, compute, cold start).
- :func:`run_reference` – run a module under raw wasmtime with its built-in WASI (the
  reference the benchmarks and the tests compare ``fog run`` with).
- :func:`show` – print a result (tables, geometric means, the five worst, files written).
- :class:`SuiteResult`, :class:`RuntimeResult` – ``.ok`` is False on any failure or
  checksum mismatch; ``.to_json()``.
"""

from foglayer.bench._harness import run_reference
from foglayer.bench._polybench import DATASETS, KERNELS, polybench
from foglayer.bench._report import SuiteResult
from foglayer.bench._runtime_bench import RuntimeResult, runtime
from foglayer.bench._speedtest import TESTS as SPEEDTEST_TESTS
from foglayer.bench._speedtest import speedtest


def show(result: "SuiteResult | RuntimeResult", console=None) -> None:
    """Print ``result`` for a person: tables, ratios, geometric means, where files went."""
    if isinstance(result, RuntimeResult):
        from foglayer.bench._runtime_bench import print_runtime

        print_runtime(result, console)
    else:
        from foglayer.bench._report import print_result

        print_result(result, console)


__all__ = ["DATASETS", "KERNELS", "SPEEDTEST_TESTS", "RuntimeResult", "SuiteResult",
           "polybench", "run_reference", "runtime", "show", "speedtest"]
