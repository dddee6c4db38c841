"""The AOT cache is not trusted: entries are authenticated and bound to their module and
settings, the directory is private and the user's own, and writes never follow a plant."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _programs import build

from foglayer.errors import FogError
from foglayer.runtime import EngineSettings, cache_path, load_module


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "aot"


@pytest.fixture(scope="module")
def modes():
    return build("rt_modes")


@pytest.fixture(scope="module")
def counter():
    return build("exit_code")


def _fog_run(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "foglayer.cli", "run", *map(str, args)],
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)


def test_swapped_entries_are_refused_and_rebuilt(modes, counter):
    a, b = load_module(modes), load_module(counter)
    pa, pb = cache_path(a.digest, a.settings), cache_path(b.digest, b.settings)
    blob_a, blob_b = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(blob_b)  # each name now holds the other module's machine code
    pb.write_bytes(blob_a)
    os.chmod(pa, 0o600)
    os.chmod(pb, 0o600)
    assert not load_module(modes).from_cache  # refused: compiled again...
    assert load_module(modes).from_cache  # ...and stored under its own name
    r = _fog_run(modes, "hello")
    assert (r.returncode, r.stdout) == (0, "hello from wasm\n"), r.stderr


def test_entry_forged_without_the_secret_is_refused(modes):
    import hashlib

    mod = load_module(modes)
    entry = cache_path(mod.digest, mod.settings)
    blob = bytearray(entry.read_bytes())
    artifact = bytes(blob[40:])
    # What an attacker without the secret can do: rewrite, and re-hash the bytes.
    blob[8:40] = hashlib.sha256(artifact).digest()
    entry.write_bytes(bytes(blob))
    assert not load_module(modes).from_cache


def test_cache_of_another_user_is_refused(modes, monkeypatch):
    load_module(modes)
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with pytest.raises(FogError, match="belongs to uid .* not to you"):
        load_module(modes)


def test_cache_of_another_user_is_a_one_line_error(modes, cache):
    if os.getuid() != 0:
        pytest.skip("needs root to hand the directory to another user")
    cache.mkdir(parents=True)
    os.chown(cache, 12345, 12345)
    r = _fog_run(modes, "hello")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "belongs to uid 12345" in r.stderr


def test_cache_is_private(modes, cache):
    mod = load_module(modes, EngineSettings(consume_fuel=True))
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    for path in (cache_path(mod.digest, mod.settings), cache / "key"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_planted_symlinks_are_never_written_through(modes, cache, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    cache.mkdir(parents=True)
    probe = load_module(modes, use_cache=False)
    name = cache_path(probe.digest, probe.settings).name
    # The old temp name (predictable) and the entry itself both point at the victim.
    (cache / f".{name}.{os.getpid()}.tmp").symlink_to(victim)
    (cache / name).symlink_to(victim)
    mod = load_module(modes)
    assert not mod.from_cache
    assert victim.read_bytes() == b"precious"
    assert not (cache / name).is_symlink() and load_module(modes).from_cache


def test_loose_secret_is_replaced(modes, cache):
    mod = load_module(modes)
    key = cache / "key"
    os.chmod(key, 0o644)  # others may have read it: entries tagged with it are not trusted
    assert not load_module(modes).from_cache
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert load_module(modes).from_cache and mod.digest
