"""PolyBench/C 4.2.1 (30 kernels): native vs `fog run` vs raw wasmtime."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

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


def polybench(dataset: str = "LARGE", runs: int = 5, kernels: Sequence[str] | None = None, *,
              out: str | os.PathLike | None = None, write: bool = True, progress: bool = True,
              runners: Sequence[str] = SUITE_RUNNERS, timeout: float = 1800.0) -> SuiteResult:
    """Run PolyBench ``dataset`` (``runs`` repetitions) under every runner, interleaved."""
    from foglayer.bench._suite import run_suite

    dataset = check_dataset(dataset)
    names = check_kernels(kernels)
    if runs < 1:
        raise FogError(f"--runs {runs}: must be at least 1")
    require_compiler()
    plan = Plan(programs(dataset, names), runners=tuple(runners), runs=runs, timeout=timeout,
                wasmtime_settings="default", progress=progress)
    return run_suite("polybench", "PolyBench/C 4.2.1", {"dataset": dataset, "kernels": list(names),
                                                         "row_label": "kernel"},
                     plan, out=out, write=write)
