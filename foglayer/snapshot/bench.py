"""Benchmark of checkpoints: ``fog bench snapshot``.

1. The cost of being checkpointable: PolyBench kernels (LARGE) rewritten against plain,
   both under the runtime (``fog run``'s engine and WASI), interleaved, median wall time
   of ``_start``; and the growth of the code section.
2. Pause latency (request -> snapshot on disk, fsync'd) and restore latency (a fresh
   process's work: read the snapshot, instantiate, fill memory, rewind to the first
   resumed instruction) for apps with 16 MiB, 256 MiB and 1 GiB of touched memory.
3. Snapshot size against touched memory, with zstd and without compression.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from foglayer.runtime import Instance, load_module
from foglayer.snapshot import _format, _wasm
from foglayer.snapshot._capture import CheckpointOptions, Session
from foglayer.snapshot._rewrite import make_checkpointable
from foglayer.wasi import Wasi

POLYBENCH = Path(__file__).resolve().parent.parent / "bench" / "polybench"
KERNELS = ("gemm", "2mm", "jacobi-2d", "heat-3d", "doitgen", "syrk", "mvt", "atax")
FLAGS = ("-O3", "-msimd128", "-ffp-contract=off")
TOUCH = Path(__file__).with_name("bench_touch.c")
SIZES_MIB = (16, 256, 1024)



def _request_when_ready(session, r_fd: int) -> threading.Thread:
    """Ask ``session`` for a checkpoint once the app has written "ready" to ``r_fd``."""

    def watch() -> None:
        buf = b""
        while b"ready" not in buf:
            chunk = os.read(r_fd, 64)
            if not chunk:
                return
            buf += chunk
        session.request()

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    return th

def _code_size(wasm: bytes) -> int:
    return sum(end - start for sid, start, end in _wasm.sections(wasm) if sid == 10)


def _build(src: Path, flags: tuple[str, ...]) -> Path:
    from foglayer.toolchain import compile_c

    return compile_c([src], flags=list(flags))


def _timed(fn) -> tuple[float, float]:
    """Wall time and this thread's CPU time (robust when other work shares the CPUs)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - t0, time.thread_time() - c0


def _time_plain(module, devnull: int) -> tuple[float, float]:
    inst = Instance(module, Wasi.create(["k"], stdio=(0, devnull, 2)))
    dt = _timed(inst.run)
    inst.close()
    return dt


def _time_rewritten(rewritten, module, devnull: int) -> tuple[float, float]:
    s = Session(rewritten, module, Wasi.create(["k"], stdio=(0, devnull, 2)))
    s.reserve_buffer()
    dt = _timed(s.run)
    s.inst.close()
    return dt


def overhead(kernels=KERNELS, dataset: str = "LARGE", runs: int = 3, log=print) -> list[dict]:
    rows = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    for k in kernels:
        wasm = _build(POLYBENCH / f"{k}.c", (*FLAGS, f"-D{dataset}_DATASET"))
        rw = make_checkpointable(wasm)
        plain, rewritten = load_module(wasm), load_module(rw.path)
        tp, tr = [], []
        for _ in range(runs):  # interleaved, so that load changes hit both alike
            tp.append(_time_plain(plain, devnull))
            tr.append(_time_rewritten(rw, rewritten, devnull))
        p, r = statistics.median(t[0] for t in tp), statistics.median(t[0] for t in tr)
        pc, rc = statistics.median(t[1] for t in tp), statistics.median(t[1] for t in tr)
        size0, size1 = _code_size(wasm.read_bytes()), _code_size(rw.path.read_bytes())
        rows.append({"kernel": k, "plain_s": p, "checkpointable_s": r, "ratio": r / p,
                     "plain_cpu_s": pc, "checkpointable_cpu_s": rc, "cpu_ratio": rc / pc,
                     "code_plain": size0, "code_checkpointable": size1})
        log(f"  {k:<12} plain {p:7.3f} s  checkpointable {r:7.3f} s  {r / p:5.2f}x wall  "
            f"{rc / pc:5.2f}x cpu  code {size0 // 1024} KiB -> {size1 // 1024} KiB "
            f"({size1 / size0:.2f}x)")
    os.close(devnull)
    return rows


def _touch_session(rw, module, mib: int, rounds: int, options: CheckpointOptions):
    r_fd, w_fd = os.pipe()
    s = Session(rw, module, Wasi.create(["touch", str(mib), str(rounds)], stdio=(0, w_fd, 2)),
                options=options)
    return s, r_fd, w_fd


def latency(sizes=SIZES_MIB, runs: int = 3, log=print, workdir: str | None = None) -> list[dict]:
    rw = make_checkpointable(_build(TOUCH, ("-O2",)))
    module = load_module(rw.path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fog-snapbench-", dir=workdir) as tmp:
        for mib in sizes:
            for level in (_format.DEFAULT_LEVEL, None):
                pauses, lat, sync, restores, sizes_ = [], [], [], [], []
                for _ in range(runs):
                    path = os.path.join(tmp, "touch.fogsnap")
                    # The app goes on after its checkpoint (the snapshot is written by a
                    # forked child); it is halted at its first resumed instruction.
                    opts = CheckpointOptions(path=path, level=level)
                    s, r_fd, w_fd = _touch_session(rw, module, mib, 1_000_000, opts)
                    s.reserve_buffer()
                    s.on_resume = s.halt

                    th = _request_when_ready(s, r_fd)
                    s.run()
                    s.wait_background()
                    os.close(w_fd)
                    th.join()
                    os.close(r_fd)
                    cp = s.history[-1]
                    assert cp.error is None, cp.error
                    lat.append(cp.latency)
                    pauses.append(s.resumed_at - cp.requested)
                    sizes_.append(os.path.getsize(path))
                    s.inst.close()
                    del s
                    restores.append(_restore_latency(path))
                    sync.append(_stop_after_latency(rw, module, mib, path, level))
                row = {"mib": mib, "compression": "zstd" if level else "none",
                       "pause_ms": 1000 * statistics.median(pauses),
                       "on_disk_ms": 1000 * statistics.median(lat),
                       "stop_ms": 1000 * statistics.median(sync),
                       "restore_ms": 1000 * statistics.median(restores),
                       "size": statistics.median(sizes_)}
                rows.append(row)
                log(f"  {mib:>5} MiB {row['compression']:<5} app paused {row['pause_ms']:7.1f} ms, "
                    f"on disk after {row['on_disk_ms']:7.1f} ms; stop-after-checkpoint "
                    f"{row['stop_ms']:7.1f} ms; restore {row['restore_ms']:7.1f} ms; "
                    f"{row['size'] / 2**20:.1f} MiB")
    return rows


def _stop_after_latency(rw, module, mib: int, path: str, level) -> float:
    """--stop-after-checkpoint (a migration): written in this process, request -> on disk."""
    opts = CheckpointOptions(path=path, level=level, stop_after=True)
    s, r_fd, w_fd = _touch_session(rw, module, mib, 1_000_000, opts)
    s.reserve_buffer()

    th = _request_when_ready(s, r_fd)
    s.run()
    os.close(w_fd)
    th.join()
    os.close(r_fd)
    s.inst.close()
    return s.history[-1].latency


def _restore_latency(path: str) -> float:
    """From opening the snapshot to the first instruction after the rewind."""
    from foglayer.snapshot._run import open_session

    r_fd, w_fd = os.pipe()
    t0 = time.perf_counter()
    snap = _format.load(path)
    s = open_session(snap, stdio=(0, w_fd, 2),
                     options=CheckpointOptions(path=path + ".again"))
    snap.close()
    s.on_resume = s.halt  # measure only: stop right there, write nothing more
    s.run()
    dt = (s.resumed_at or time.perf_counter()) - t0
    s.inst.close()
    os.close(w_fd)
    os.close(r_fd)
    return dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="fog bench snapshot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernels", default=",".join(KERNELS))
    ap.add_argument("--dataset", default="LARGE")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default=",".join(map(str, SIZES_MIB)), help="MiB, comma-separated")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args(argv)
    print(f"foglayer snapshot benchmark: medians of {a.runs} runs; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if not a.skip_overhead:
        print(f"\n1. cost of being checkpointable (PolyBench {a.dataset}, wall time of _start)")
        rows = overhead(a.kernels.split(","), a.dataset, a.runs)
        def gm(values) -> float:
            return math.exp(statistics.fmean(math.log(v) for v in values))

        print(f"  {'geomean':<12} {gm(r['ratio'] for r in rows):.3f}x wall, "
              f"{gm(r['cpu_ratio'] for r in rows):.3f}x cpu, "
              f"{gm(r['code_checkpointable'] / r['code_plain'] for r in rows):.2f}x code size")
    if not a.skip_latency:
        print("\n2./3. latencies and sizes. paused: request -> the app runs again (the "
              "snapshot is\n  written by a forked child); on disk: request -> snapshot fsync'd; "
              "stop: --stop-after-checkpoint,\n  request -> on disk (written in-process); "
              "restore: open the snapshot -> first resumed instruction")
        rows = latency([int(x) for x in a.sizes.split(",")], a.runs)
        print(f"\n  {'touched':>8} {'compress':<8} {'paused ms':>9} {'on disk ms':>10} "
              f"{'stop ms':>9} {'restore ms':>10} {'size MiB':>9} {'size/touched':>12}")
        for r in rows:
            print(f"  {r['mib']:>5} MiB {r['compression']:<8} {r['pause_ms']:9.1f} "
                  f"{r['on_disk_ms']:10.1f} {r['stop_ms']:9.1f} {r['restore_ms']:10.1f} "
                  f"{r['size'] / 2**20:9.1f} {r['size'] / (r['mib'] << 20):12.3f}")


if __name__ == "__main__":
    main()
