"""Every PolyBench kernel (SMALL): checkpointed once at a random safepoint, stopped,
restored in a fresh instance; its checksum must equal the uninterrupted run's.

The kernels print one JSON line whose ``time_s`` differs run to run, so the checksum
fields are compared. Runs go through the Python API in-process (the CLI paths are covered
by test_snapshot_restore) to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from foglayer.runtime import run
from foglayer.snapshot import CheckpointOptions, restore, run_checkpointable
from foglayer.toolchain import compile_c

SRC = Path(__file__).resolve().parents[2] / "foglayer" / "bench" / "polybench"
KERNELS = sorted(p.stem for p in SRC.glob("*.c"))
FLAGS = ["-O3", "-msimd128", "-ffp-contract=off", "-DSMALL_DATASET"]
COUNTDOWN = 16  # fixed, so that "the k-th safepoint" is a reproducible moment

pytestmark = pytest.mark.skipif(not KERNELS, reason="no PolyBench sources")


def _result(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    r = json.loads(lines[0])
    return {k: r[k] for k in ("kernel", "dataset", "checksum", "sum")}


def _run_to(path: Path, fn, *args, **kw):
    with open(path, "wb") as out:
        return fn(*args, stdio=(0, out.fileno(), 2), **kw)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_resumes_with_the_same_checksum(kernel, tmp_path):
    wasm = compile_c([SRC / f"{kernel}.c"], flags=FLAGS)
    ref = _run_to(tmp_path / "ref", run, wasm)
    assert ref.exit_code == 0
    expected = _result((tmp_path / "ref").read_text())

    dry = _run_to(tmp_path / "dry", run_checkpointable, wasm, progress=False,
                  options=CheckpointOptions(path=str(tmp_path / "unused"), countdown=COUNTDOWN))
    assert dry.exit_code == 0 and dry.safepoints > 0
    assert _result((tmp_path / "dry").read_text()) == expected

    k = random.Random(kernel).randint(1, dry.safepoints)
    snap = tmp_path / "k.fogsnap"
    first = _run_to(tmp_path / "out1", run_checkpointable, wasm, progress=False,
                    options=CheckpointOptions(path=str(snap), countdown=COUNTDOWN,
                                              after_safepoints=k, stop_after=True))
    assert first.stopped, f"no checkpoint at safepoint {k} of {dry.safepoints}"
    second = _run_to(tmp_path / "out2", restore, snap,
                     options=CheckpointOptions(path=str(tmp_path / "again")))
    assert second.exit_code == 0 and not second.stopped
    out = (tmp_path / "out1").read_text() + (tmp_path / "out2").read_text()
    assert _result(out) == expected
    assert not os.path.exists(tmp_path / "again")
