"""`fog bench runtime` end to end at a small scale: every micro-benchmark runs natively, under
`fog run` and under raw wasmtime with the same check values, and cold start is measured.
No timing is asserted (the benchmark prints the ratios)."""

from __future__ import annotations

import json

from foglayer.bench import runtime, show


def test_runtime_bench_small(tmp_path):
    res = runtime(runs=1, out=tmp_path, progress=False, calls=2000, matmul_n=48)
    assert res.ok, [(r.name, r.problems()) for r in res.rows] + [(c.name, c.errors) for c in res.cold]
    assert [r.name for r in res.rows] == ["write16", "read4k", "clock", "yield", "noop", "matmul"]
    for r in res.rows:
        assert set(r.cells) == {"native-baseline", "fog", "fog-python", "wasmtime"}
        assert bool(r.cells["native-baseline"].times) == (r.name != "noop")  # (e): Wasm only
        assert len({c for cell in r.cells.values() for c in cell.checks}) == 1, r.name
        assert res.per_call_us(r, "fog") is not None or r.name == "matmul"
    kinds = {c.kind for c in res.cold if c.times}
    assert {"fog-warm", "fog-cold", "wasmtime-warm", "wasmtime-cold"} <= kinds
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["ok"] and data["rows"][0]["ratios"]["fog/native"] > 0
    assert "memory_may_move=False" in data["environment"]["wasmtime_engine"]

    from rich.console import Console

    console = Console(record=True, width=220)
    show(res, console)
    text = console.export_text()
    assert "fog/wasmtime" in text and "cold start" in text and "µs/call" in text
