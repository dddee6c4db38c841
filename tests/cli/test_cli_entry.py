"""The ``fog`` entry points: the installed script, ``python -m foglayer.cli`` and
``python -m foglayer`` are one command; ``fog run`` never imports click or rich."""

from __future__ import annotations

import shutil
import subprocess
import sys

from _programs import build


def _imported(stderr: str) -> set[str]:
    """Top-level packages named by -X importtime's lines (``import time: ... | name``)."""
    return {ln.rsplit("|", 1)[1].strip().split(".")[0] for ln in stderr.splitlines()
            if ln.startswith("import time:") and "|" in ln}


def test_fog_run_imports_neither_click_nor_rich():
    modes = build("rt_modes")
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "foglayer.cli", "run", modes,
                        "hello"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "hello from wasm\n", r.stderr
    mods = _imported(r.stderr)
    assert "foglayer" in mods and "wasmtime" in mods  # the measurement sees imports at all
    assert not mods & {"click", "rich"}, sorted(mods & {"click", "rich"})


def test_every_entry_point_is_the_same_command():
    fog = shutil.which("fog") or str(__import__("pathlib").Path(sys.executable).with_name("fog"))
    outs = [subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            for cmd in ([fog, "--help"], [sys.executable, "-m", "foglayer.cli", "--help"],
                        [sys.executable, "-m", "foglayer", "--help"])]
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    assert outs[0].stdout == outs[1].stdout == outs[2].stdout
    assert outs[0].stdout.startswith("Usage: fog ") and "completion" in outs[0].stdout
