"""The official WASI testsuite's runtime adapter for ``fog run``.

The suite's runner (``test-runner/wasi_test_runner.py -r THIS_FILE``) loads this module and
asks it for the command line of each test. ``FOG`` names the ``fog`` executable (default:
the one beside this interpreter, else the one on ``PATH``, else ``python -m foglayer``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any


def fog_command() -> list[str]:
    beside = Path(sys.executable).with_name("fog")
    fog = os.environ.get("FOG") or (str(beside) if beside.exists() else shutil.which("fog"))
    if fog:
        return [fog]
    return [sys.executable, "-m", "foglayer"]


def get_name() -> str:
    return "foglayer"


def get_version() -> str:
    return "dev"


def get_wasi_versions() -> list[str]:
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> list[str]:
    return ["wasi:cli/command"]


def get_timeout_seconds() -> float:
    # The runner's default is 5 s; a loaded CI machine may need more for one test.
    return float(os.environ.get("FOG_WASI_TESTSUITE_TIMEOUT", "120"))


def compute_argv(test_path: str, args_env_dirs: list[Any], proposals: list[str],
                 wasi_world: str, wasi_version: str) -> list[str]:
    """``fog run [--env K=V]... [--dir ROOT:/] TEST.wasm ARGS...``: the test's root is ``/``."""
    args, env, root = args_env_dirs
    argv = fog_command() + ["run"]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    if root:
        argv += ["--dir", f"{Path(root)}:/"]
    return argv + [test_path, *args]
