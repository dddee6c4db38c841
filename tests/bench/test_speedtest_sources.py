"""speedtest1 built natively and for wasm32-wasi runs all 32 tests with identical results."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest
import wasmtime

from foglayer.bench.speedtest1 import (
    SOURCE,
    SQLITE_DEFINES,
    _sqlite,
    amalgamation_dir,
    sqlite_version,
)
from foglayer.errors import FogError
from foglayer.toolchain import compile_c

TESTS = [100, 110, 120, 130, 140, 142, 145, 150, 160, 161, 170, 180, 190, 200, 210, 230,
         240, 250, 260, 270, 280, 290, 300, 310, 320, 400, 410, 500, 510, 520, 980, 990]


@pytest.fixture(scope="module")
def builds():
    d = amalgamation_dir()
    common = ["-ffp-contract=off", f"-I{d}", *SQLITE_DEFINES]
    srcs = [SOURCE, d / "sqlite3.c"]
    wasm = compile_c(srcs, target="wasm32-wasi", flags=["-O3", "-msimd128", *common],
                     deps=[d / "sqlite3.h"])
    exe = compile_c(srcs, target="native", flags=["-O3", "-mcpu=baseline", *common],
                    deps=[d / "sqlite3.h"])
    engine = wasmtime.Engine()
    return exe, engine, wasmtime.Module.from_file(engine, str(wasm))


def _parse(out: str) -> dict[int, dict]:
    lines = [json.loads(ln) for ln in out.splitlines()]
    assert lines[-1] == {"done": 32, "sqlite": sqlite_version()}
    rows = lines[:-1]
    assert [r["test"] for r in rows] == TESTS
    for r in rows:
        assert r["name"] and r["time_s"] >= 0 and len(r["check"]) == 16
        int(r["check"], 16)
    return {r["test"]: r for r in rows}


def _native(exe, *args: str) -> dict[int, dict]:
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return _parse(proc.stdout)


def _wasm(engine, module, tmp_path, *args: str) -> dict[int, dict]:
    data = tmp_path / "data"
    data.mkdir()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    cfg = wasmtime.WasiConfig()
    cfg.argv = ["speedtest1", *args]
    cfg.preopen_dir(str(data), "/data")
    cfg.stdout_file = str(tmp_path / "stdout.txt")
    cfg.stderr_file = str(tmp_path / "stderr.txt")
    store.set_wasi(cfg)
    inst = linker.instantiate(store, module)
    try:
        inst.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        assert e.code == 0, (tmp_path / "stderr.txt").read_text()
    return _parse((tmp_path / "stdout.txt").read_text())


def _checks(rows: dict[int, dict]) -> dict[int, str]:
    return {k: r["check"] for k, r in rows.items()}


def test_the_vendored_sqlite_is_3_54_1():
    assert sqlite_version() == "3.54.1"


def test_native_and_wasm_agree(builds, tmp_path):
    exe, engine, module = builds
    (tmp_path / "n").mkdir()
    (tmp_path / "wm").mkdir()
    (tmp_path / "wd").mkdir()
    (tmp_path / "wn").mkdir()
    n_mem = _native(exe, "--size", "5")
    n_disk = _native(exe, "--size", "5", "--disk", str(tmp_path / "n" / "t.db"))
    n_dot = _native(exe, "--size", "1", "--disk", str(tmp_path / "n" / "u.db"), "--vfs", "unix-dotfile")
    w_mem = _wasm(engine, module, tmp_path / "wm", "--size", "5")
    w_disk = _wasm(engine, module, tmp_path / "wd", "--size", "5", "--disk", "/data/t.db")
    # Dotfile locking (SQLite's WASI default) at --size 1: a lock directory per transaction.
    w_dot = _wasm(engine, module, tmp_path / "wn", "--size", "1", "--disk", "/data/t.db",
                  "--vfs", "unix-dotfile")
    assert n_mem[100]["name"] == "2500 INSERTs into table with no index"
    assert (tmp_path / "n" / "t.db").stat().st_size > 0
    assert (tmp_path / "wd" / "data" / "t.db").stat().st_size > 0
    assert _checks(w_mem) == _checks(n_mem)
    assert _checks(w_disk) == _checks(n_disk)
    assert _checks(w_dot) == _checks(n_dot)
    # Results do not depend on where the database lives.
    assert _checks(n_disk) == _checks(n_mem)
    # Every test is checked: write-only ones hash their row counts.
    assert len(set(_checks(n_mem).values())) > 20


def test_sqlite_error_exits_nonzero(builds, tmp_path):
    exe, _, _ = builds
    proc = subprocess.run([str(exe), "--size", "1", "--disk", str(tmp_path / "no" / "t.db")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "speedtest1:" in proc.stderr
    proc = subprocess.run([str(exe), "--size", "1", "--vfs", "nope"], capture_output=True, text=True)
    assert proc.returncode != 0 and proc.stdout == "" and "no such VFS" in proc.stderr


def _tgz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path / "cache"))
    amalgamation_dir.cache_clear()
    yield tmp_path
    amalgamation_dir.cache_clear()


def test_missing_npm_is_a_fog_error(fresh_cache, monkeypatch):
    monkeypatch.setattr(_sqlite.shutil, "which", lambda name: None)
    with pytest.raises(FogError, match="npm not found"):
        amalgamation_dir()


def test_hash_mismatch_is_a_fog_error(fresh_cache, monkeypatch):
    tgz = fresh_cache / "pkg.tgz"
    tgz.write_bytes(_tgz({"package/deps/sqlite3/sqlite3.c": b"int x;\n",
                          "package/deps/sqlite3/sqlite3.h": b"\n"}))
    monkeypatch.setattr(_sqlite, "_npm_pack", lambda dest: tgz)
    with pytest.raises(FogError, match="SHA-256 mismatch") as e:
        amalgamation_dir()
    assert "\n" not in str(e.value)
    assert not (fresh_cache / "cache" / "sqlite" / _sqlite.VERSION / "sqlite3.c").exists()
