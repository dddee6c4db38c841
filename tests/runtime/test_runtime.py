"""fog run: exit codes, isolation, limits, traps, bad input, the AOT cache, the Python API."""

from __future__ import annotations

import os

import pytest
from _programs import build, fog

from foglayer.runtime import (
    EngineSettings,
    Instance,
    ModuleError,
    cache_path,
    load_module,
    run,
)
from foglayer.wasi import Wasi


@pytest.fixture(scope="module")
def modes():
    return build("rt_modes")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path / "cache"))


def test_exit_code_is_the_guests(modes):
    assert fog("run", modes, "exit", "42").returncode == 42
    r = fog("run", modes, "hello")
    assert (r.returncode, r.stdout) == (0, "hello from wasm\n")


def test_guest_sees_only_granted_env(modes):
    env = dict(os.environ, FOG_SECRET_OF_HOST="leak")
    r = fog("run", "--env", "A=1", "--env", "B=two=2", modes, "env", env=env)
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["A=1", "B=two=2"]


def test_memory_limit_says_which_limit(modes):
    r = fog("run", "--max-memory", "32MiB", modes, "alloc")
    assert r.returncode == 137
    assert "memory limit exceeded" in r.stderr and "32.0 MiB" in r.stderr
    assert "Traceback" not in r.stderr


def test_fuel_limit_says_which_limit(modes):
    r = fog("run", "--fuel", "100000", modes, "spin")
    assert r.returncode == 137
    assert "fuel limit exceeded" in r.stderr


def test_timeout_says_which_limit(modes):
    r = fog("run", "--timeout", "0.3", modes, "spin")
    assert r.returncode == 137
    assert "timeout exceeded" in r.stderr


def test_trap_gives_reason_and_backtrace(modes):
    r = fog("run", modes, "trap")
    assert r.returncode == 134
    first, *rest = r.stderr.splitlines()
    assert first.startswith("fog: trap: trap in _start:") and "unreachable" in first
    assert rest[0] == "wasm backtrace:" and any("main" in ln for ln in rest[1:])


@pytest.mark.parametrize("args, message", [
    (["run", "missing.wasm"], "missing.wasm: no such file"),
    (["run", "--dir", "/no/such/dir", "x.wasm"], "no such directory"),
    (["run", "--dir", "a:b:c:d", "x.wasm"], "expected HOST[:GUEST][:ro]"),
    (["run", "--max-memory", "lots", "x.wasm"], "invalid size"),
    (["run", "--fuel", "-3", "x.wasm"], "--fuel"),
    (["run", "--env", "NOEQUALS", "x.wasm"], "expected KEY=VALUE"),
])
def test_bad_input_is_one_line(args, message):
    r = fog(*args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr and r.stderr.startswith("fog: error:")


def test_malformed_module_is_one_line(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0\x05garbage")
    r = fog("run", bad)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "invalid WebAssembly module" in r.stderr


def test_non_wasi_import_is_refused(tmp_path):
    # (module (import "env" "launch_missiles" (func)) (func (export "_start")))
    wasm = bytes.fromhex("0061736d0100000001040160000002170103656e760f6c61756e63685f6d697373696c6573000003020100070a01065f737461727400010a040102000b")
    path = tmp_path / "env.wasm"
    path.write_bytes(wasm)
    with pytest.raises(ModuleError, match="env.launch_missiles"):
        run(str(path))


def test_second_run_uses_the_aot_cache(modes, tmp_path):
    first = load_module(modes)
    second = load_module(modes)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert cache_path(first.digest, first.settings).exists()


def test_corrupted_cache_entry_is_rebuilt(modes):
    mod = load_module(modes)
    entry = cache_path(mod.digest, mod.settings)
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(bytes(blob))
    again = load_module(modes)
    assert not again.from_cache  # refused, recompiled...
    assert load_module(modes).from_cache  # ...and stored afresh
    assert run(again, ["exit", "7"], stdio=(0, os.open(os.devnull, os.O_WRONLY), 2)).exit_code == 7


def test_cache_depends_on_engine_settings(modes):
    plain = load_module(modes, EngineSettings())
    metered = load_module(modes, EngineSettings(consume_fuel=True))
    assert cache_path(plain.digest, plain.settings) != cache_path(metered.digest, metered.settings)


def test_stats_report_fuel_memory_and_wasi_calls(modes):
    devnull = os.open(os.devnull, os.O_WRONLY)
    small = run(modes, ["work", "1000"], stats=True, stdio=(0, devnull, 2)).stats
    big = run(modes, ["work", "100000"], stats=True, stdio=(0, devnull, 2)).stats
    assert big.fuel > small.fuel + 100000
    assert small.peak_memory >= 64 * 1024
    assert small.wasi_calls["fd_write"] >= 1 and "proc_exit" not in small.wasi_calls
    r = fog("run", "--stats", modes, "work", "10")
    assert "instructions (fuel)" in r.stderr and "fd_write" in r.stderr


def test_reactor_keeps_state_between_calls():
    mod = load_module(build("rt_counter", "-mexec-model=reactor"))
    with Instance(mod, Wasi.create(["counter"])) as inst:
        inst.initialize()
        for i in range(1, 101):
            inst.call("add", i)
        assert inst.call("add", 0) == 5050
        assert inst.call("calls") == 101
        assert inst.stats.wall_time > 0
