"""`fog bench polybench|speedtest --arch aarch64`: the suites on aarch64, end to end through the
CLI with real processes. On an x86-64 host: native aarch64 builds from the same zig, and the
Wasm side (fog run and raw wasmtime) on the arm64 root's aarch64 Python under qemu-aarch64;
on an aarch64 host, natively. Timing is not asserted; every runner must agree with native.

Cost: ~25 s warm (the root, the builds and the root's AOT caches cached); the first run builds
the root (a minute or two, shared with the other cross-architecture tests) and SQLite for aarch64.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from foglayer.bench import _arch
from foglayer.errors import FogError

EMULATED = platform.machine() != "aarch64"


def _bench(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "foglayer", "bench", *map(str, args)],
                          capture_output=True, text=True, timeout=1200)


def _assert_all_agree(out: Path, rows: int) -> dict:
    data = json.loads((out / "results.json").read_text())
    assert data["environment"]["arch"] == "aarch64"
    assert {"native-baseline", "fog", "wasmtime"} <= set(data["runners"])
    assert len(data["rows"]) == rows
    for row in data["rows"]:
        checks = {k: r["checks"] for k, r in row["runners"].items()}
        assert all(len(c) == 1 for c in checks.values()), (row["name"], row["status"])
        assert len({c[0] for c in checks.values()}) == 1, (row["name"], checks)
    return data


def test_polybench_on_aarch64_native_fog_and_wasmtime_agree(tmp_path):
    r = _bench("polybench", "--arch", "aarch64", "--dataset", "MINI", "--kernels", "gemm,atax",
               "--runs", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    data = _assert_all_agree(tmp_path, 2)
    for name in ("native", "fog run", "wasmtime", "gemm", "atax"):
        assert name in r.stdout
    if EMULATED:
        assert set(data["runners"]) == {"native-baseline", "fog", "wasmtime"}
        assert "-target aarch64-linux-gnu" in data["environment"]["builds"]["native-baseline"]
        assert "only indicative" in r.stdout and "on aarch64 (emulated)" in r.stdout
    else:
        assert "emulated" not in data["environment"]


def test_speedtest_on_aarch64_native_fog_and_wasmtime_agree(tmp_path):
    r = _bench("speedtest", "--arch", "aarch64", "--size", "1", "--runs", "1", "--out", tmp_path)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    _assert_all_agree(tmp_path, 32)
    assert ("only indicative" in r.stdout) == EMULATED


def test_unknown_arch_is_one_line_and_fails():
    r = _bench("polybench", "--arch", "sparc", "--runs", "1")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "sparc" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_on_an_aarch64_host_aarch64_runs_natively_without_the_root(monkeypatch):
    monkeypatch.setattr(_arch.platform, "machine", lambda: "aarch64")
    where = _arch.machine(_arch.check_arch("arm64"))
    assert where.arch == "aarch64" and not where.emulated and where.native_target == "native"
    with pytest.raises(FogError, match="only aarch64 is emulated"):
        _arch.check_arch("x86_64")
