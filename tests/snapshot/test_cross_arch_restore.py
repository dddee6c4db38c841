"""x86-64 -> aarch64 -> x86-64: a checkpoint moves across CPU architectures and back.

The middle hop runs in the arm64 root under qemu-aarch64 (foglayer.toolchain.arm_root), with
its own Python, wasmtime and Cranelift code for aarch64. Each app must end byte-identical to
a run that never moved: stdout, the files it wrote, its exit code.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from _programs import build, fog

from foglayer.runtime import Instance, load_module
from foglayer.snapshot import restore_instance, snapshot_instance
from foglayer.toolchain import arm_root
from foglayer.wasi import Preopen, Wasi

STEPS = "5000"  # enough work that no hop can finish before its checkpoint (an idle machine is fast)
STOPPED = "stopped after checkpoint"


@pytest.fixture(scope="module")
def arm():
    return arm_root()


def _data(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = random.Random(11)
    (root / "input.bin").write_bytes(bytes(rng.randrange(256) for _ in range(40_000)))
    (root / "log.txt").write_bytes(b"first line\n")
    return root


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_command_checkpointed_on_x86_resumes_on_aarch64_and_back(arm, tmp_path):
    prog = build("snap_files")
    ref_dir = _data(tmp_path / "ref" / "data")
    ref = fog("run", "--dir", f"{ref_dir}:/data", prog, "/data", STEPS)
    assert ref.returncode == 0, ref.stderr

    work = tmp_path / "moved"
    d = _data(work / "data")
    s1, s2 = work / "x86.fogsnap", work / "arm.fogsnap"
    r1 = fog("run", "--checkpoint-every", "0.2", "--stop-after-checkpoint", "--checkpoint-to",
             s1, "--dir", f"{d}:/data", prog, "/data", STEPS, cwd=work)
    assert STOPPED in r1.stderr, r1.stderr
    # On aarch64: resume, run a while, checkpoint again and stop.
    # The other machine does not trust the host directories a snapshot names: it grants them.
    r2 = subprocess.run(arm.fog("restore", "--checkpoint-every", "1", "--stop-after-checkpoint",
                                "--checkpoint-to", s2, "--dir", f"{d}:/data", s1,
                                binds=[work, prog.parent], cwd=work),
                        capture_output=True, text=True, timeout=600)
    assert STOPPED in r2.stderr, r2.stderr
    r3 = fog("restore", "--dir", f"{d}:/data", s2, cwd=work)
    assert r3.returncode == ref.returncode == 0, r3.stderr
    assert r1.stdout + r2.stdout + r3.stdout == ref.stdout
    assert _files(d) == _files(ref_dir)


# Runs inside the root: restore a service snapshot, call it, snapshot it again.
_HOP = """
import json, sys
from foglayer.runtime import load_module
from foglayer.snapshot import restore_instance, snapshot_instance
wasm, src, dst, values = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
data = sys.argv[5]
import platform
assert platform.machine() == "aarch64", platform.machine()
inst = restore_instance(load_module(wasm), open(src, "rb").read(), dirs={"/data": data})
for v in values:
    inst.call("push", v)
inst.call("flush_journal")
open(dst, "wb").write(snapshot_instance(inst))
inst.close()
"""


def _service(prog: Path, data: Path) -> Instance:
    inst = Instance(load_module(prog), Wasi.create(["svc"], {}, [Preopen(str(data), "/data")]))
    inst.initialize()
    assert inst.call("open_journal") == 1
    return inst


def _results(inst: Instance) -> tuple[int, int]:
    return inst.call("sum"), inst.call("digest")


def test_service_snapshot_moves_to_aarch64_and_back(arm, tmp_path):
    prog = build("snap_service", "-mexec-model=reactor")
    values = [(i * 2654435761) & 0xFFFFFFFF for i in range(900)]
    parts = values[:300], values[300:600], values[600:]

    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = _service(prog, ref_dir)
    for v in values:
        ref.call("push", v)
    ref.call("flush_journal")
    expected = _results(ref)
    ref.close()

    work = tmp_path / "moved"
    (work / "data").mkdir(parents=True)
    inst = _service(prog, work / "data")
    for v in parts[0]:
        inst.call("push", v)
    inst.call("flush_journal")
    (work / "x86.snap").write_bytes(snapshot_instance(inst))
    inst.close()
    hop = subprocess.run(arm.command(["python", "-c", _HOP, prog, work / "x86.snap",
                                      work / "arm.snap", json.dumps(parts[1]), work / "data"],
                                     binds=[work, prog.parent]),
                         capture_output=True, text=True, timeout=600)
    assert hop.returncode == 0, hop.stderr
    back = restore_instance(load_module(prog), (work / "arm.snap").read_bytes(),
                            dirs={"/data": str(work / "data")})
    for v in parts[2]:
        back.call("push", v)
    back.call("flush_journal")
    assert _results(back) == expected
    back.close()
    assert _files(work / "data") == _files(ref_dir)

