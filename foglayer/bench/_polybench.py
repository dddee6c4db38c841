"""PolyBench/C 4.2.1 (30 kernels): native vs `fog run` vs raw wasmtime."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from foglayer.bench._arch import check_arch, host_arch
from foglayer.bench._harness import (
    SUITE_RUNNERS,
    BadOutput,
    Plan,
    Program,
    Sample,
    json_lines,
    require_compiler,
    sample,
)
from foglayer.bench._report import SuiteResult
from foglayer.errors import FogError

SOURCE_DIR = Path(__file__).with_name("polybench")
KERNELS = (
    "2mm", "3mm", "adi", "atax", "bicg", "cholesky", "correlation", "covariance", "deriche",
    "doitgen", "durbin", "fdtd-2d", "floyd-warshall", "gemm", "gemver", "gesummv",
    "gramschmidt", "heat-3d", "jacobi-1d", "jacobi-2d", "lu", "ludcmp", "mvt", "nussinov",
    "seidel-2d", "symm", "syr2k", "syrk", "trisolv", "trmm",
)
DATASETS = ("MINI", "SMALL", "MEDIUM", "LARGE", "EXTRALARGE")


def check_dataset(dataset: str) -> str:
    d = dataset.strip().upper()
    if d not in DATASETS:
        raise FogError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    return d


def check_kernels(kernels: Sequence[str] | None) -> tuple[str, ...]:
    if not kernels:
        return KERNELS
    out = []
    for k in kernels:
        k = k.strip()
        if k not in KERNELS:
            raise FogError(f"unknown kernel {k!r}: expected some of {', '.join(KERNELS)}")
        if k not in out:
            out.append(k)
    return tuple(out)


def _parser(kernel: str, dataset: str):
    def parse(stdout: str) -> dict[str, Sample]:
        lines = json_lines(stdout)
        if len(lines) != 1:
            raise BadOutput(f"expected one JSON line, got {len(lines)}")
        obj = lines[0]
        if obj.get("kernel") != kernel or obj.get("dataset") != dataset:
            raise BadOutput(f"expected kernel {kernel} {dataset}, got "
                            f"{obj.get('kernel')} {obj.get('dataset')}")
        return {kernel: sample(obj, "checksum")}

    return parse


def programs(dataset: str, kernels: Sequence[str]) -> list[Program]:
    return [Program(name=k, sources=(SOURCE_DIR / f"{k}.c",), flags=(f"-D{dataset}_DATASET",),
                    parse=_parser(k, dataset), rows=(k,), group=dataset,
                    deps=(SOURCE_DIR / "polybench.h",))
            for k in kernels]


def polybench(dataset: str | None = None, runs: int | None = None,
              kernels: Sequence[str] | None = None, *, arch: str | None = None,
              out: str | os.PathLike | None = None, write: bool = True, progress: bool = True,
              runners: Sequence[str] | None = None, timeout: float = 1800.0) -> SuiteResult:
    """Run PolyBench ``dataset`` (``runs`` repetitions) under every runner, interleaved, on
    ``arch`` (this host's by default; ``aarch64`` on x86-64: emulated, SMALL and 3 runs unless
    given)."""
    from foglayer.bench._suite import resolve_arch, run_suite

    target = check_arch(arch)
    emulated = target != host_arch()
    dataset = check_dataset(dataset or ("SMALL" if emulated else "LARGE"))
    names = check_kernels(kernels)
    runs = runs if runs is not None else 3 if emulated else 5
    if runs < 1:
        raise FogError(f"--runs {runs}: must be at least 1")
    require_compiler()
    machine, runners = resolve_arch(target, runners or SUITE_RUNNERS)
    plan = Plan(programs(dataset, names), runners=runners, runs=runs, timeout=timeout,
                wasmtime_settings="default", progress=progress, machine=machine)
    return run_suite("polybench", "PolyBench/C 4.2.1" + machine.title,
                     {"dataset": dataset, "kernels": list(names), "row_label": "kernel",
                      "arch": machine.arch}, plan, out=out, write=write)
