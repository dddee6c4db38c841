"""Checkpoint requests by signal: never fatal, never to the wrong process; files private."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

from _programs import build, fog

from foglayer.snapshot import load_snapshot


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _until_requests_held(pid: int, at_most: float = 0.3) -> None:
    """Until fog blocks SIGUSR1 (its first act), or ``at_most`` seconds: not the
    interpreter's own start, which no Python code can shorten."""
    deadline = time.monotonic() + at_most
    while time.monotonic() < deadline:
        status = open(f"/proc/{pid}/status").read()
        blocked = int(status.split("SigBlk:")[1].split()[0], 16)
        if blocked & 1 << (signal.SIGUSR1 - 1):
            return
        time.sleep(0.002)


def test_early_sigusr1_is_held_until_the_run_can_take_it(tmp_path):
    """SIGUSR1 from the first moment on, while the module is still being rewritten."""
    compute = build("snap_compute")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, FOG_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp))
    snap = tmp_path / "early.fogsnap"
    proc = subprocess.Popen([sys.executable, "-m", "foglayer.cli", "run", "--checkpointable",
                             "--checkpoint-to", str(snap), str(compute), "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _until_requests_held(proc.pid)  # fog's first moments: it has not even parsed its flags
    for _ in range(5):
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.1)
    code = proc.wait(timeout=120)
    err = proc.stderr.read().decode()
    assert code == 3, (code, err)  # not 138 (killed by SIGUSR1)
    assert [p.name for p in tmp.iterdir() if p.name.startswith("fog-rewrite-")] == []
    s = load_snapshot(snap)  # the held request was served once the run could
    assert s.meta.kind == "command"
    s.close()
    assert _mode(snap) == 0o600
    assert _mode(tmp_path / "cache" / "rewritten") == 0o700


def test_fog_checkpoint_while_the_module_is_still_rewritten_is_served(tmp_path):
    from foglayer.snapshot._registry import lookup

    compute = build("snap_compute")
    env = dict(os.environ, FOG_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    snap = tmp_path / "soon.fogsnap"
    proc = subprocess.Popen([sys.executable, "-m", "foglayer.cli", "run", "--checkpointable",
                             "--checkpoint-to", str(snap), str(compute), "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while lookup(proc.pid) is None:  # it announces itself before rewriting
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    rewritten = list((tmp_path / "cache" / "rewritten").glob("*.wasm"))
    r = fog("checkpoint", proc.pid)
    assert proc.wait(timeout=120) == 3, proc.stderr.read().decode()
    assert r.returncode == 0 and r.stdout.strip() == str(snap), r.stderr
    assert rewritten == []  # the request came before the module was ready


def test_checkpoint_never_signals_a_process_from_a_forged_entry(tmp_path):
    from foglayer._dirs import data_dir
    from foglayer.snapshot._registry import _start_time

    victim = subprocess.Popen(["sleep", "60"])
    try:
        entry = data_dir("checkpointable") / f"{victim.pid}.json"
        entry.write_text(json.dumps({"pid": victim.pid, "path": str(tmp_path / "x"),
                                     "count": 0, "error": None,
                                     "start": _start_time(victim.pid)}))
        r = fog("checkpoint", victim.pid, "--timeout", "2")
        assert r.returncode == 2 and "not a checkpointable fog run" in r.stderr, r.stderr
        time.sleep(0.1)
        assert victim.poll() is None  # still alive: never signalled
    finally:
        victim.kill()
        victim.wait()
        entry.unlink(missing_ok=True)


def test_registry_and_snapshot_key_are_private(tmp_path):
    from foglayer._dirs import data_dir
    from foglayer.snapshot import _format
    from foglayer.snapshot._registry import Announcement

    a = Announcement(str(tmp_path / "s.fogsnap"))
    try:
        assert _mode(a.file.parent) == 0o700
        assert _mode(a.file) == 0o600 and _mode(a.lock) == 0o600
    finally:
        a.withdraw()
    assert _format._key() is not None
    assert _mode(data_dir("keys")) == 0o700
    assert _mode(data_dir("keys") / "snapshot.key") == 0o600
