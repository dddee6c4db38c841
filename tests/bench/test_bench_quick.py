"""Quick mode of the evaluation, through the real harness pipeline (builds, runners, checks,
files): PolyBench MINI (all 30 kernels) and speedtest1 --size 5 (in memory and on disk).

Timing is not asserted here (performance claims live in `fog bench`); what is asserted: every
Wasm checksum equals native's, all 30 kernels and all 32 tests ran, the files were written.

Cost: ~1-2 min on 2 cores with the builds cached. The first run builds 30 kernels x 3
variants and SQLite three times (the Wasm one, then its Cranelift AOT compile, take longest):
several minutes more, once; the build cache (FOG_CACHE_DIR) keeps them.
"""

from __future__ import annotations

import json

from foglayer.bench import KERNELS, SPEEDTEST_TESTS, polybench, speedtest


def test_polybench_mini_all_kernels(tmp_path):
    res = polybench("MINI", runs=1, out=tmp_path, progress=False)
    assert [r.name for r in res.rows] == list(KERNELS)
    assert res.ok, [(r.name, r.problems()) for r in res.rows if not r.ok]
    for r in res.rows:
        checks = {c for cell in r.cells.values() for c in cell.checks}
        assert len(checks) == 1 and len(r.cells) == 4, r.name  # all four runners agree
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["environment"]["zig"] and data["environment"]["arch"]
    assert "-ffp-contract=off" in data["environment"]["builds"]["wasm"]
    assert (tmp_path / "results.csv").exists()
    assert (tmp_path / "polybench-mini.png").stat().st_size > 1000  # matplotlib: bench extra


def test_speedtest_size5_memory_and_disk(tmp_path):
    res = speedtest(5, runs=1, modes=("memory", "disk"), out=tmp_path, progress=False)
    assert res.ok, [(r.group, r.name, r.problems()) for r in res.rows if not r.ok]
    for group in ("in-memory", "on disk"):
        rows = [r for r in res.rows if r.group == group]
        assert [int(r.name) for r in rows] == list(SPEEDTEST_TESTS)  # all 32 tests
        for r in rows:
            checks = {c for cell in r.cells.values() for c in cell.checks}
            assert len(checks) == 1 and all(c.checks for c in r.cells.values()), r.name
    assert res.env["sqlite"]
