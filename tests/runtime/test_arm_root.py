"""Real cross-architecture execution: the same module in the arm64 root, under qemu-aarch64.

The root is built once per machine (minutes) and cached; these tests reuse it.
"""

from __future__ import annotations

import subprocess

import pytest
from _programs import build, fog

import foglayer
from foglayer.toolchain import ArmRootError, arm_root

EM_AARCH64 = 183  # ELF e_machine


@pytest.fixture(scope="module")
def arm():
    return arm_root()


def _in_arm(arm, *args, binds=(), timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(arm.fog(*args, binds=binds), capture_output=True, text=True,
                          timeout=timeout)


def test_root_runs_an_aarch64_python(arm):
    r = subprocess.run(arm.command(["python", "-c", "import platform, wasmtime; "
                                    "print(platform.machine())"]),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "aarch64"


def test_fog_version_works_in_the_root_from_the_bound_in_sources(arm):
    r = _in_arm(arm, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == foglayer.__version__


def test_same_output_and_exit_code_on_aarch64_as_on_x86_64(arm, tmp_path):
    wasm = build("snap_compute")
    host = fog("run", wasm, "6")
    assert host.returncode == 3, host.stderr
    there = _in_arm(arm, "run", wasm, "6", binds=[wasm.parent])
    assert there.returncode == 3, there.stderr
    assert there.stdout == host.stdout
    assert "done: " in there.stdout


def test_aot_code_compiled_in_the_root_is_aarch64(arm, tmp_path):
    wasm = build("snap_compute")
    out = tmp_path / "a.cwasm"
    r = _in_arm(arm, "compile", wasm, "-o", out, binds=[wasm.parent, tmp_path])
    assert r.returncode == 0, r.stderr
    blob = out.read_bytes()
    elf = blob[blob.index(b"\x7fELF"):]  # after the cache entry's own header
    assert int.from_bytes(elf[18:20], "little") == EM_AARCH64


def test_missing_root_gets_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path))
    with pytest.raises(ArmRootError, match="no arm64 root here"):
        arm_root(build=False, quiet=True)


def test_damaged_root_is_not_used(arm, tmp_path, monkeypatch):
    """A root dir without its marker (an interrupted copy, say) is never taken as built."""
    monkeypatch.setenv("FOG_CACHE_DIR", str(tmp_path))
    fake = tmp_path / arm.path.name
    (fake / "usr/bin").mkdir(parents=True)
    with pytest.raises(ArmRootError, match="no arm64 root here"):
        arm_root(build=False, quiet=True)
