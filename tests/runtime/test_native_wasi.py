"""The hot WASI calls in C: both paths give the same results, counts and gate behaviour."""

from __future__ import annotations

import os

import pytest
from _programs import build, fog

from foglayer.runtime import EngineSettings, Instance, load_module
from foglayer.wasi import Preopen, Wasi

CALLS = 25


@pytest.fixture(params=["native", "python"])
def wasi_path(request, monkeypatch) -> str:
    monkeypatch.setenv("FOG_WASI_NATIVE", "1" if request.param == "native" else "0")
    return request.param


def _instance(tmp_path, capfd=None) -> Instance:
    module = load_module(build("native_calls"), EngineSettings())
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    wasi = Wasi.create(["native_calls", str(CALLS)], {}, [Preopen(str(sandbox), "/sandbox")])
    return Instance(module, wasi)


def test_calls_see_every_fd_table_change_and_are_counted(wasi_path, tmp_path, capfd):
    with _instance(tmp_path) as inst:
        result = inst.run()
    out = capfd.readouterr().out
    assert (result.exit_code, out) == (0, f"ok {CALLS}\n")
    assert result.stats.wasi_path == wasi_path
    calls = result.stats.wasi_calls
    assert calls["fd_write"] == CALLS + 3  # the 16-byte writes, the refused one, b, stdout
    assert calls["clock_time_get"] == 2
    assert calls["path_filestat_get"] == 2 and calls["fd_filestat_get"] >= 1
    assert (tmp_path / "sandbox" / "b.txt").read_bytes() == b"bee"


def test_gate_sees_every_call_on_both_paths(wasi_path, tmp_path, capfd):
    with _instance(tmp_path) as inst:
        seen: list[str] = []
        inst.binding.gate = lambda index: seen.append(inst.binding.names[index]) or False
        result = inst.run()
        counts = result.stats.wasi_calls
    assert result.exit_code == 0
    assert seen.count("fd_write") == counts["fd_write"] == CALLS + 3
    assert seen.count("clock_time_get") == 2


def test_gate_can_hold_a_native_call_back(wasi_path, tmp_path, capfd):
    """A gated call is skipped, not run (a checkpoint re-runs it after the restore)."""
    with _instance(tmp_path) as inst:
        def gate(index: int) -> bool:
            if inst.binding.names[index] == "fd_write" and not held:  # the first, to a.txt
                held.append(index)
                return True
            return False
        held: list[int] = []
        inst.binding.gate = gate
        inst.run()
    assert held
    assert (tmp_path / "sandbox" / "a.txt").stat().st_size == 0  # the first write never ran


def test_python_path_when_native_is_off(monkeypatch, tmp_path):
    monkeypatch.setenv("FOG_WASI_NATIVE", "0")
    with _instance(tmp_path) as inst:
        assert inst.binding.path == "python" and inst.binding.native is None


def test_unbuildable_native_part_falls_back_to_python_or_refuses(monkeypatch, tmp_path, capfd):
    """A machine where the C cannot be built runs on Python; FOG_WASI_NATIVE=1 says why."""
    from foglayer.errors import FogError
    from foglayer.runtime import _native
    from foglayer.toolchain import NativeLibrary

    broken = tmp_path / "hostcalls.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(_native, "LIBRARY", NativeLibrary(broken, _native.FLAGS))
    monkeypatch.setattr(_native, "_LIB", [])
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FOG_WASI_NATIVE", raising=False)
    assert _native.library() is None
    with _instance(tmp_path) as inst:
        assert inst.binding.path == "python"
        assert inst.run().exit_code == 0
    monkeypatch.setenv("FOG_WASI_NATIVE", "1")
    with pytest.raises(FogError, match="FOG_WASI_NATIVE=1 but the native WASI calls cannot"):
        _native.library()


@pytest.mark.parametrize("choice, path", [("1", "native"), ("0", "python")])
def test_stats_show_the_active_wasi_path(tmp_path, choice, path):
    (tmp_path / "sandbox").mkdir()
    r = fog("run", "--stats", "--dir", f"{tmp_path / 'sandbox'}:/sandbox", build("native_calls"),
            "3", env={**os.environ, "FOG_WASI_NATIVE": choice})
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stderr.splitlines() if "WASI path" in ln)
    assert path in line
    assert any("fd_write" in ln and "6" in ln for ln in r.stderr.splitlines())
