"""``fog up``: the embedded continuum as a user runs it. Start, deploy the example, Ctrl-C,
start again: the state is resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from foglayer.cluster import free_port, wait_until
from foglayer.examples import EXAMPLES


def fog(env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "foglayer.cli", *args], capture_output=True,
                          env=env, timeout=timeout)


def up(env, log):
    return subprocess.Popen([sys.executable, "-m", "foglayer.cli", "up", "--nodes", "cloud,iot",
                             "--port", str(env["FOG_TEST_PORT"]), "--no-view"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ready(env) -> bool:
    r = fog(env, "nodes")
    return r.returncode == 0 and r.stdout.decode().count("ready") == 2


def test_fog_up_deploy_ctrl_c_and_resume(tmp_path):
    env = {**os.environ, "FOG_DATA_DIR": str(tmp_path / "data"), "FOG_TEST_PORT": str(free_port())}
    env.pop("FOG_CREDS", None)
    env.pop("FOG_SERVER", None)
    log_path = tmp_path / "up.log"
    with open(log_path, "ab") as log:
        proc = up(env, log)
        try:
            wait_until(lambda: ready(env), 60, "fog up's nodes")
            # A second fog up on the same state is refused, in one line.
            r = fog(env, "up", "--no-view")
            assert r.returncode == 2 and b"already running" in r.stderr, r
            r = fog(env, "deploy", str(EXAMPLES / "kvstore.yaml"))
            assert r.returncode == 0, r
            assert b"kv.0: running on iot" in r.stdout, r.stdout  # low latency to iot wins
            assert fog(env, "invoke", "kv", "put", "name=ada").stdout == b"ok\n"
            assert fog(env, "invoke", "kv", "get", "name").stdout == b"ada\n"
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0
        finally:
            stop(proc)
        text = log_path.read_text()
        assert "stopping (the state stays" in text and "Traceback" not in text, text
        # its default state: other shells find the credentials without being told
        assert "other shells use them by default" in text and "FOG_CREDS" not in text, text
        # Nothing is left behind: no server, no controller, no node.
        time.sleep(0.2)
        r = fog(env, "ps")
        assert r.returncode == 2 and b"cannot connect" in r.stderr
        # Again: the same continuum, the same app.
        proc = up(env, log)
        try:
            wait_until(lambda: ready(env), 60, "the resumed nodes")
            wait_until(lambda: fog(env, "invoke", "kv", "count").returncode == 0, 30,
                       "kv to serve again")
            assert b"running" in fog(env, "ps").stdout
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0
        finally:
            stop(proc)
    assert "resuming a continuum" in log_path.read_text()
