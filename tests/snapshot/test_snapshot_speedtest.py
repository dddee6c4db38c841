"""SQLite's speedtest1, in memory and on disk: checkpointed at a random safepoint, stopped,
restored in a fresh instance; every test's check value equals the uninterrupted run's.

On disk, the database (and SQLite's journal) are open files in a preopened directory at
the checkpoint; the database left behind must be byte-identical too.
"""

from __future__ import annotations

import json
import random

import pytest

from foglayer.runtime import run
from foglayer.snapshot import CheckpointOptions, restore, run_checkpointable
from foglayer.toolchain import CompileError, compile_c
from foglayer.wasi import Preopen

SIZE = "4"
COUNTDOWN = 1 << 15


@pytest.fixture(scope="module")
def speedtest():
    try:
        from foglayer.bench.speedtest1 import SOURCE, SQLITE_DEFINES, amalgamation_dir

        d = amalgamation_dir()
        # The same flags as test_speedtest_sources: one build for both.
        return compile_c([SOURCE, d / "sqlite3.c"],
                         flags=["-O3", "-msimd128", "-ffp-contract=off", f"-I{d}",
                                *SQLITE_DEFINES], deps=[d / "sqlite3.h"])
    except (ImportError, CompileError) as e:  # pragma: no cover - the sources are optional
        pytest.skip(f"speedtest1 does not build here: {e}")


def _checks(text: str) -> list[tuple]:
    rows = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
    return [(r.get("test"), r.get("name"), r.get("check"), r.get("done")) for r in rows]


def _to(path, fn, *args, **kw):
    with open(path, "wb") as out:
        return fn(*args, stdio=(0, out.fileno(), 2), **kw)


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_speedtest_resumes_with_the_same_results(speedtest, mode, tmp_path):
    def args_and_dirs(tag):
        if mode == "memory":
            return ["--size", SIZE], []
        d = tmp_path / f"{tag}-data"
        d.mkdir()
        return ["--size", SIZE, "--disk", "/data/speedtest1.db"], [Preopen(str(d), "/data")]

    a, dirs = args_and_dirs("ref")
    ref = _to(tmp_path / "ref", run, speedtest, a, preopens=dirs)
    assert ref.exit_code == 0
    expected = _checks((tmp_path / "ref").read_text())

    a, dirs = args_and_dirs("dry")
    dry = _to(tmp_path / "dry", run_checkpointable, speedtest, a, preopens=dirs,
              progress=False, options=CheckpointOptions(path=str(tmp_path / "unused"),
                                                        countdown=COUNTDOWN))
    assert dry.exit_code == 0 and dry.safepoints > 1
    assert _checks((tmp_path / "dry").read_text()) == expected

    a, dirs = args_and_dirs("run")
    k = random.Random(mode).randint(dry.safepoints // 4, dry.safepoints * 3 // 4)
    snap = tmp_path / "st.fogsnap"
    first = _to(tmp_path / "out1", run_checkpointable, speedtest, a, preopens=dirs,
                progress=False, options=CheckpointOptions(path=str(snap), countdown=COUNTDOWN,
                                                          after_safepoints=k, stop_after=True))
    assert first.stopped
    second = _to(tmp_path / "out2", restore, snap,
                 options=CheckpointOptions(path=str(tmp_path / "again")))
    assert second.exit_code == 0
    out = (tmp_path / "out1").read_text() + (tmp_path / "out2").read_text()
    assert _checks(out) == expected
    if mode == "disk":
        assert ((tmp_path / "run-data" / "speedtest1.db").read_bytes()
                == (tmp_path / "ref-data" / "speedtest1.db").read_bytes())
