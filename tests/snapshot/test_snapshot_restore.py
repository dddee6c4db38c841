"""Checkpoint running apps in real processes, kill them, restore: nothing may differ.

Every test compares with a run that was never interrupted: stdout, exit code and the
files the app wrote must be byte-identical.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _programs import build, fog

from foglayer.snapshot import load_snapshot

COMPUTE_ROUNDS = "100"  # ~1.7 s: the random checkpoint moment (<= 0.8 s) lands inside the run
FILES_STEPS = "900"
ENV = dict(os.environ)


@pytest.fixture(scope="module")
def compute():
    return build("snap_compute")


@pytest.fixture(scope="module")
def files_prog():
    return build("snap_files")


@pytest.fixture(scope="module")
def compute_ref(compute, tmp_path_factory):
    r = fog("run", compute, COMPUTE_ROUNDS)
    assert r.returncode == 3
    fog("run", "--checkpointable", "--checkpoint-to",
        tmp_path_factory.mktemp("warm") / "unused", compute, "1")  # rewrite once, cached
    return r.stdout.encode()


def _input_tree(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = random.Random(7)
    (root / "input.bin").write_bytes(bytes(rng.randrange(256) for _ in range(40_000)))
    (root / "log.txt").write_bytes(b"an existing first line\n")  # the app appends
    return root


@pytest.fixture(scope="module")
def files_ref(files_prog, tmp_path_factory):
    """An uninterrupted run of snap_files: its stdout and the files it leaves."""
    d = _input_tree(tmp_path_factory.mktemp("ref") / "data")
    r = fog("run", "--dir", f"{d}:/data", files_prog, "/data", FILES_STEPS)
    assert r.returncode == 0, r.stderr
    fog("run", "--checkpointable", "--checkpoint-to", d.parent / "unused",
        "--dir", f"{d.parent / 'warm'}:/data", files_prog, "/data", "0")  # warm the cache
    return r.stdout.encode(), {n: (d / n).read_bytes() for n in ("out.bin", "log.txt", "table.bin")}


def _popen(*args, stdout, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "foglayer.cli", *map(str, args)],
                            stdout=stdout, stderr=subprocess.PIPE, cwd=cwd, env=ENV)


def _wait_registered(proc: subprocess.Popen) -> None:
    from foglayer.snapshot._registry import lookup

    deadline = time.monotonic() + 60
    while lookup(proc.pid) is None:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _app_stderr(text: str) -> str:
    return "".join(ln for ln in text.splitlines(True) if not ln.startswith("fog: stopped"))


def _files(d: Path) -> dict[str, bytes]:
    return {n: (d / n).read_bytes() for n in ("out.bin", "log.txt", "table.bin")}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_checkpoint_at_a_random_moment_kill_restore(compute, compute_ref, tmp_path, seed):
    """fog checkpoint PID while it runs (it goes on), SIGKILL, fog restore elsewhere."""
    snap = tmp_path / "app.fogsnap"
    with open(tmp_path / "out1", "wb") as out1:
        proc = _popen("run", "--checkpointable", "--checkpoint-to", snap, compute,
                      COMPUTE_ROUNDS, stdout=out1)
        _wait_registered(proc)
        time.sleep(random.Random(seed).uniform(0.05, 0.8))
        r = fog("checkpoint", proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(snap)
    meta = load_snapshot(snap).meta
    written = meta.stdio["1"]  # stdout is a file: how much had been written
    with open(tmp_path / "out2", "wb") as out2:
        r2 = subprocess.run([sys.executable, "-m", "foglayer.cli", "restore", snap],
                            stdout=out2, stderr=subprocess.PIPE, cwd=tmp_path, timeout=120)
    assert r2.returncode == 3, r2.stderr
    first = (tmp_path / "out1").read_bytes()[:written]
    assert first + (tmp_path / "out2").read_bytes() == compute_ref


@pytest.mark.parametrize("seed", [4, 5])
def test_stop_after_checkpoint_then_restore(compute, compute_ref, tmp_path, seed):
    """SIGUSR1 with --stop-after-checkpoint: the app exits; the output is never doubled."""
    snap = tmp_path / "app.fogsnap"
    with open(tmp_path / "out1", "wb") as out1:
        proc = _popen("run", "--stop-after-checkpoint", "--checkpoint-to", snap, compute,
                      COMPUTE_ROUNDS, stdout=out1)
        _wait_registered(proc)
        time.sleep(random.Random(seed).uniform(0.05, 0.8))
        proc.send_signal(signal.SIGUSR1)
        assert proc.wait(timeout=60) == 0
        assert "stopped after checkpoint" in proc.stderr.read().decode()
    r = fog("restore", snap)
    assert r.returncode == 3, r.stderr
    assert (tmp_path / "out1").read_bytes() + r.stdout.encode() == compute_ref


def test_files_kept_open_across_checkpoint_and_restore(files_prog, files_ref, tmp_path):
    """Reading, writing, appending, seeking, pread/pwrite: all resume where they were."""
    ref_out, ref_files = files_ref
    d = _input_tree(tmp_path / "data")
    snap = tmp_path / "f.fogsnap"
    with open(tmp_path / "out1", "wb") as out1:
        proc = _popen("run", "--stop-after-checkpoint", "--checkpoint-to", snap,
                      "--dir", f"{d}:/data", files_prog, "/data", FILES_STEPS, stdout=out1)
        _wait_registered(proc)
        time.sleep(0.3)
        r = fog("checkpoint", proc.pid)
        assert proc.wait(timeout=60) == 0
    assert r.returncode == 0, r.stderr
    fds = load_snapshot(snap).meta.wasi.fds
    open_files = {d.guest_path for d in fds if d.is_file}
    assert open_files == {"/data/input.bin", "/data/out.bin", "/data/log.txt", "/data/table.bin"}
    r = fog("restore", snap)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out1").read_bytes() + r.stdout.encode() == ref_out
    assert _files(d) == ref_files


def _chain(first_args, snap, cwd, *, restore_args=(), every="0.1", limit=60):
    """Run, then restore again and again, each segment stopping at its first checkpoint."""
    outs, stderrs, segments = [], [], 0
    args = ["run", "--checkpoint-every", every, "--stop-after-checkpoint", "--checkpoint-to",
            snap, *first_args]
    while True:
        r = fog(*args, cwd=cwd)
        outs.append(r.stdout)
        stderrs.append(_app_stderr(r.stderr))
        if "stopped after checkpoint" not in r.stderr:
            return r, "".join(outs), segments
        segments += 1
        assert segments < limit
        args = ["restore", "--checkpoint-every", every, "--stop-after-checkpoint",
                "--checkpoint-to", snap, *restore_args, snap]


def test_chain_of_checkpoints_and_restores(files_prog, files_ref, tmp_path):
    """checkpoint -> restore -> checkpoint -> ... at least 5 times in one run, files open."""
    ref_out, ref_files = files_ref
    d = _input_tree(tmp_path / "data")
    r, out, segments = _chain(["--dir", f"{d}:/data", files_prog, "/data", FILES_STEPS],
                              tmp_path / "c.fogsnap", tmp_path)
    assert r.returncode == 0, r.stderr
    assert segments >= 5
    assert out.encode() == ref_out
    assert _files(d) == ref_files
    lineage = load_snapshot(tmp_path / "c.fogsnap").meta.lineage
    assert lineage.restores == segments - 1 and lineage.checkpoints == segments


def test_restore_in_another_directory_with_preopens_remapped(files_prog, files_ref, tmp_path):
    """Copy the data elsewhere (new mtimes), delete the original, restore from another cwd."""
    ref_out, ref_files = files_ref
    d = _input_tree(tmp_path / "a" / "data")
    snap = tmp_path / "a" / "m.fogsnap"
    r = fog("run", "--checkpoint-every", "0.3", "--stop-after-checkpoint", "--checkpoint-to",
            snap, "--dir", f"{d}:/data", files_prog, "/data", FILES_STEPS, cwd=tmp_path / "a")
    assert "stopped after checkpoint" in r.stderr, r.stderr
    moved = tmp_path / "b" / "elsewhere"
    shutil.copytree(d, moved, copy_function=shutil.copy)  # contents only: new mtimes
    shutil.rmtree(d)
    (tmp_path / "c").mkdir()
    r2 = fog("restore", "--dir", f"{moved}:/data", snap, cwd=tmp_path / "c")
    assert r2.returncode == 0, r2.stderr
    assert (r.stdout + r2.stdout).encode() == ref_out
    assert _files(moved) == ref_files
    assert not d.exists()


def test_with_files_snapshot_carries_the_preopened_tree(files_prog, files_ref, tmp_path):
    ref_out, ref_files = files_ref
    d = _input_tree(tmp_path / "data")
    snap = tmp_path / "w.fogsnap"
    r = fog("run", "--with-files", "--checkpoint-every", "0.3", "--stop-after-checkpoint",
            "--checkpoint-to", snap, "--dir", f"{d}:/data", files_prog, "/data", FILES_STEPS)
    assert "stopped after checkpoint" in r.stderr, r.stderr
    shutil.rmtree(d)  # the other machine does not share the files
    target = tmp_path / "other-machine"
    r2 = fog("restore", "--files-to", target, snap)
    assert r2.returncode == 0, r2.stderr
    assert (r.stdout + r2.stdout).encode() == ref_out
    assert _files(target / "data") == ref_files
    r3 = fog("restore", "--files-to", target, snap)  # not over a non-empty directory
    assert r3.returncode == 2 and "not empty" in r3.stderr


def test_changed_open_file_is_refused_unless_forced(files_prog, tmp_path):
    d = _input_tree(tmp_path / "data")
    snap = tmp_path / "x.fogsnap"
    r = fog("run", "--checkpoint-every", "0.3", "--stop-after-checkpoint", "--checkpoint-to",
            snap, "--dir", f"{d}:/data", files_prog, "/data", FILES_STEPS)
    assert "stopped after checkpoint" in r.stderr, r.stderr
    with open(d / "out.bin", "ab") as f:
        f.write(b"!")
    r2 = fog("restore", snap)
    assert r2.returncode == 2
    lines = r2.stderr.strip().splitlines()
    assert len(lines) == 1 and "out.bin" in lines[0] and "--force" in lines[0], r2.stderr
    r3 = fog("restore", "--force", snap)
    assert r3.returncode == 0, r3.stderr
    r4 = fog("restore", "--dir", f"{tmp_path}:/nope", snap)
    assert r4.returncode == 2 and "no preopen /nope" in r4.stderr


def test_checkpoint_of_a_process_that_is_not_checkpointable(compute, tmp_path):
    proc = _popen("run", compute, COMPUTE_ROUNDS, stdout=subprocess.DEVNULL)
    try:
        r = fog("checkpoint", proc.pid)
        assert r.returncode == 2 and "not a checkpointable fog run" in r.stderr
    finally:
        proc.kill()
        proc.wait()
    r = fog("checkpoint", "999999")
    assert r.returncode == 2 and "no process" in r.stderr


def test_missing_rewriter_says_how_to_install_it(compute, tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent),
               FOG_CACHE_DIR=str(tmp_path / "cache"))
    r = fog("run", "--checkpointable", compute, "1", env=env)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install binaryen wabt" in lines[0], r.stderr
