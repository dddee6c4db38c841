"""The benchmark harness on tiny programs: checks compared, failures kept in the table, bad
input as one-line errors. Fast: no real suite runs here (see test_bench_quick.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from foglayer.bench import DATASETS, KERNELS, polybench, speedtest
from foglayer.bench._harness import Plan, Program, Sample, execute, json_lines
from foglayer.bench._report import SuiteResult, print_result, write_files
from foglayer.errors import FogError

GOOD = r"""
#include <stdio.h>
int main(void) {
    printf("{\"time_s\":0.001,\"check\":\"same\"}\n");
    return 0;
}
"""
# Computes something different under Wasm: the harness must catch it.
DIFFERS = r"""
#include <stdio.h>
int main(void) {
#ifdef __wasm__
    const char *c = "wasm";
#else
    const char *c = "native";
#endif
    printf("{\"time_s\":0.001,\"check\":\"%s\"}\n", c);
    return 0;
}
"""
CRASHES = r"""
#include <stdio.h>
int main(void) {
#ifdef __wasm__
    __builtin_trap();
#endif
    printf("{\"time_s\":0.001,\"check\":\"same\"}\n");
    return 0;
}
"""
BROKEN = "int main( {\n"


def _parse(name):
    def parse(stdout):
        (obj,) = json_lines(stdout)
        return {name: Sample(obj["time_s"], obj["check"])}
    return parse


def _programs(tmp_path: Path) -> list[Program]:
    out = []
    for name, text in (("good", GOOD), ("differs", DIFFERS), ("crashes", CRASHES),
                       ("broken", BROKEN)):
        src = tmp_path / f"{name}.c"
        src.write_text(text)
        out.append(Program(name=name, sources=(src,), flags=(), parse=_parse(name), rows=(name,)))
    return out


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> SuiteResult:
    tmp = tmp_path_factory.mktemp("harness")
    plan = Plan(_programs(tmp), runs=2, timeout=120, progress=False)
    work = tmp / "work"
    work.mkdir()
    rows = execute(plan, work)
    res = SuiteResult("toy", "toy suite", {"runs": 2}, _env(), plan.runners, rows,
                      out_dir=tmp / "out")
    res.out_dir.mkdir()
    write_files(res)
    return res


def _env() -> dict:
    return {"cpu_model": "x", "arch": "x", "cpus": 1, "zig": "z", "wasmtime_py": "w",
            "builds": {}, "wasmtime_engine": "default"}


def _row(res: SuiteResult, name: str):
    return next(r for r in res.rows if r.name == name)


def test_matching_program_is_ok_under_every_runner(result):
    good = _row(result, "good")
    assert good.ok, good.problems()
    for key in ("native-baseline", "native-native", "fog", "wasmtime"):
        assert len(good.cells[key].times) == 2 and good.cells[key].checks == ["same", "same"]
    assert good.ratio("fog", "native-baseline") is not None


def test_a_wasm_checksum_that_differs_is_caught(result):
    row = _row(result, "differs")
    assert not row.ok
    assert row.cells["fog"].mismatch and row.cells["wasmtime"].mismatch
    assert not row.cells["native-baseline"].mismatch and not row.cells["native-native"].mismatch
    assert result.mismatches == ["differs"]
    assert not result.ok


def test_a_crash_is_in_the_table_and_the_others_still_run(result):
    row = _row(result, "crashes")
    assert row.cells["native-baseline"].times  # native still ran
    assert not row.cells["fog"].times and not row.cells["wasmtime"].times
    text = "; ".join(row.problems())
    assert "fog run: exit 134" in text and "raw wasmtime: exit 134" in text


def test_a_build_failure_is_in_the_table(result):
    row = _row(result, "broken")
    assert all("build failed" in " ".join(c.errors) for c in row.cells.values())
    assert _row(result, "good").ok  # built and ran regardless


def test_table_csv_json(result):
    from rich.console import Console

    console = Console(record=True, width=200)
    print_result(result, console)
    text = console.export_text()
    assert "CHECKSUM MISMATCH (fog run)" in text and "geometric mean" in text
    assert "build failed" in text and "FAILED: crashes, broken" in text
    data = json.loads((result.out_dir / "results.json").read_text())
    assert data["ok"] is False and data["checksum_mismatches"] == ["differs"]
    csv = (result.out_dir / "results.csv").read_text().splitlines()
    assert len(csv) == 1 + 4 and csv[0].startswith("group,name,native-baseline_median_s")


def test_each_figure_is_a_real_png(result):
    pytest.importorskip("matplotlib")
    from foglayer.bench._figures import draw

    files = draw(result)
    assert files and all(p.stat().st_size > 1000 and p.suffix == ".png" for p in files)


# --------------------------------------------------------------------------- bad input


def test_unknown_kernel_and_dataset_are_one_line_errors():
    with pytest.raises(FogError, match="unknown kernel 'gemmm'"):
        polybench("MINI", 1, ["gemm", "gemmm"], write=False)
    with pytest.raises(FogError, match="unknown dataset 'HUGE'"):
        polybench("HUGE", 1, write=False)
    with pytest.raises(FogError, match="unknown speedtest mode"):
        speedtest(5, 1, ("ram",), write=False)
    assert len(KERNELS) == 30 and DATASETS[0] == "MINI"


def test_missing_compiler_is_a_one_line_error(monkeypatch):
    import foglayer.toolchain
    from foglayer.toolchain import CompileError

    def missing():
        raise CompileError("C compiler not found: the PyPI package 'ziglang' is needed")

    monkeypatch.setattr(foglayer.toolchain, "zig_version", missing)
    with pytest.raises(FogError, match="C compiler not found"):
        polybench("MINI", 1, ["gemm"], write=False)


@pytest.mark.parametrize("args, word", [
    (["polybench", "--kernels", "gemm,nope"], "'nope'"),
    (["polybench", "--dataset", "huge"], "'huge'"),
    (["speedtest", "--size", "0"], "--size"),
    (["runtime", "--runs", "0"], "--runs"),
])
def test_bad_bench_flags_are_one_line_errors(args, word, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "foglayer.cli", "bench", *args,
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in proc.stderr
