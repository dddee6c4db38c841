"""Build the C test programs in tests/programs (cached by foglayer.toolchain)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from foglayer.toolchain import compile_c

PROGRAMS = Path(__file__).parent / "programs"


def build(name: str, *flags: str) -> Path:
    return compile_c([PROGRAMS / f"{name}.c"], flags=["-O2", *flags])


def fog(*args: str | os.PathLike, cwd: str | os.PathLike | None = None,
        env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real ``fog`` command in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "foglayer.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
