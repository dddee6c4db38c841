"""Stopping a guest: limits fire inside blocking host calls, Ctrl-C stops a computing guest,
``fog stop`` (a Control's stop) ends a sleeping one, and limits out of range are refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from _programs import build, fog

from foglayer.runtime import Control, Instance, Limits, Stopped, load_module, settings_for
from foglayer.wasi import Wasi

# A guest that sleeps this long must be cut short by a 1 s limit well before it wakes.
SLEEP = 6
BEFORE_WAKING = SLEEP - 1.5


@pytest.fixture(scope="module")
def modes():
    return build("rt_modes")


def _fog_run(*args: str | os.PathLike, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "foglayer.cli", "run", *map(str, args)],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _ended(proc: subprocess.Popen, within: float) -> tuple[int, str]:
    """The exit code and stderr, failing if the process outlives ``within`` seconds."""
    try:
        _, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"still running {within} s later")
    return proc.returncode, err


def test_timeout_fires_while_the_guest_sleeps_in_poll_oneoff(modes):
    proc = _fog_run("--timeout", "1", modes, "sleep", str(SLEEP))
    code, err = _ended(proc, BEFORE_WAKING)
    assert code == 137 and err.startswith("fog: limit: timeout exceeded"), err


def test_timeout_fires_while_the_guest_waits_on_a_pipe(modes):
    r, w = os.pipe()  # never written to: the guest's read blocks
    try:
        proc = _fog_run("--timeout", "1", modes, "read", stdin=r)
        code, err = _ended(proc, BEFORE_WAKING)
    finally:
        os.close(r)
        os.close(w)
    assert code == 137 and "timeout exceeded" in err, err


def test_stop_ends_a_guest_sleeping_in_a_host_call(modes):
    control = Control()
    devnull = os.open(os.devnull, os.O_WRONLY)
    inst = Instance(load_module(modes, settings_for(Limits())),
                    Wasi.create(["m", "sleep", str(SLEEP)], stdio=(0, devnull, 2)),
                    control=control)
    outcome: list[BaseException | int] = []

    def run() -> None:
        try:
            outcome.append(inst.run().exit_code)
        except BaseException as e:  # noqa: BLE001 - what the run ended with is the result
            outcome.append(e)

    t = threading.Thread(target=run)
    t.start()
    threading.Event().wait(0.5)
    control.stop()
    t.join(BEFORE_WAKING)
    inst.close()
    os.close(devnull)
    assert not t.is_alive(), "the stopped guest slept on"
    assert isinstance(outcome[0], Stopped) and outcome[0].reason == "stopped", outcome


@pytest.mark.parametrize("flags", [[], ["--timeout", "100"]], ids=["plain", "with-epochs"])
def test_ctrl_c_stops_a_computing_guest(modes, flags):
    proc = _fog_run(*flags, modes, "ready-spin")
    assert proc.stdout.readline() == "spinning\n"
    proc.send_signal(signal.SIGINT)
    code, err = _ended(proc, 4)
    assert code == 130, err
    assert err.splitlines() == ["fog: error: interrupted"], err


@pytest.mark.parametrize("flag, value", [
    ("--timeout", "inf"), ("--timeout", "nan"), ("--timeout", "-1"), ("--timeout", "1e999"),
    ("--fuel", str(1 << 64)), ("--fuel", str((1 << 64) + 5)), ("--fuel", str(1 << 63)),
])
def test_limit_out_of_range_is_one_line(modes, flag, value):
    r = fog("run", flag, value, modes, "hello")
    assert r.returncode == 2, r.stdout
    assert len(r.stderr.strip().splitlines()) == 1 and flag in r.stderr, r.stderr
