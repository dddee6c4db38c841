"""The PolyBench/C 4.2.1 kernel sources build for native and wasm32-wasi and agree bit for bit.

Each kernel is built at MINI size for both targets with ``-ffp-contract=off`` (so FMA
contraction cannot change results), run once (native as a subprocess, wasm through
wasmtime-py's built-in WASI), and must print one JSON line with the same checksum.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import wasmtime

from foglayer.toolchain import compile_c

SRC_DIR = Path(__file__).resolve().parents[2] / "foglayer" / "bench" / "polybench"

KERNELS = [
    "2mm",
    "3mm",
    "adi",
    "atax",
    "bicg",
    "cholesky",
    "correlation",
    "covariance",
    "deriche",
    "doitgen",
    "durbin",
    "fdtd-2d",
    "floyd-warshall",
    "gemm",
    "gemver",
    "gesummv",
    "gramschmidt",
    "heat-3d",
    "jacobi-1d",
    "jacobi-2d",
    "lu",
    "ludcmp",
    "mvt",
    "nussinov",
    "seidel-2d",
    "symm",
    "syr2k",
    "syrk",
    "trisolv",
    "trmm",
]

DATASET = "MINI"
WASM_FLAGS = ["-O3", "-msimd128", "-ffp-contract=off", f"-D{DATASET}_DATASET"]
NATIVE_FLAGS = ["-O3", "-mcpu=baseline", "-ffp-contract=off", f"-D{DATASET}_DATASET"]


def _run_native(exe: Path) -> str:
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run_wasm(wasm: Path, tmp_path: Path) -> str:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    out = tmp_path / "stdout.txt"
    cfg = wasmtime.WasiConfig()
    cfg.stdout_file = str(out)
    store.set_wasi(cfg)
    inst = linker.instantiate(store, wasmtime.Module.from_file(engine, str(wasm)))
    try:
        inst.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exc:  # proc_exit(n): only 0 is a success
        assert exc.code == 0, f"wasm exited with {exc.code}"
    return out.read_text()


def _parse(stdout: str, kernel: str) -> dict:
    lines = stdout.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stdout, got {stdout!r}"
    result = json.loads(lines[0])
    assert list(result) == ["kernel", "dataset", "time_s", "checksum", "sum"]
    assert result["kernel"] == kernel
    assert result["dataset"] == DATASET
    assert isinstance(result["time_s"], float) and result["time_s"] >= 0.0
    assert re.fullmatch(r"[0-9a-f]{16}", result["checksum"])
    assert isinstance(result["sum"], (int, float))  # finite at MINI for every kernel
    return result


@pytest.mark.parametrize("kernel", KERNELS)
def test_native_and_wasm_checksums_match(kernel: str, tmp_path: Path) -> None:
    src = SRC_DIR / f"{kernel}.c"
    assert src.is_file(), src
    exe = compile_c([src], target="native", flags=NATIVE_FLAGS)
    wasm = compile_c([src], target="wasm32-wasi", flags=WASM_FLAGS)

    native = _parse(_run_native(exe), kernel)
    wasm_res = _parse(_run_wasm(wasm, tmp_path), kernel)

    assert native["checksum"] == wasm_res["checksum"]
    assert native["sum"] == wasm_res["sum"]
    assert native["sum"] != 0  # non-trivial output
