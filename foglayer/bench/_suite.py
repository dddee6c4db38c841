"""Run a suite end to end: plan -> rows -> SuiteResult with JSON, CSV and figures written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from foglayer.bench._arch import EMULATION_NOTE, Machine, machine
from foglayer.bench._harness import Plan, environment, execute, make_workroot, out_dir
from foglayer.bench._report import SuiteResult, write_files

# Under emulation no CPU is "native" to tune for, and fog run with its WASI in Python only
# lengthens the run: the emulated table has native, fog run and raw wasmtime.
_NOT_EMULATED = ("native-native", "fog-python")


def resolve_arch(arch: str, runners: Sequence[str]) -> tuple[Machine, tuple[str, ...]]:
    """Where the suite runs (the arm64 root is built here when needed) and its runners."""
    where = machine(arch)
    if where.emulated:
        runners = [r for r in runners if r not in _NOT_EMULATED]
    return where, tuple(runners)


def run_suite(suite: str, title: str, params: dict, plan: Plan, *,
              out: str | os.PathLike | None, write: bool = True, extra_env: dict | None = None,
              notes: list[str] | None = None) -> SuiteResult:
    d = out_dir(suite, out) if write else None
    workroot = make_workroot()
    try:
        env = environment(plan.runners, plan.wasmtime_settings, workroot, plan.machine)
        env["program_flags"] = sorted({" ".join(p.flags) for p in plan.programs})
        env.update(extra_env or {})
        rows = execute(plan, workroot)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
    notes = [*(notes or []), *([EMULATION_NOTE] if plan.machine.emulated else [])]
    result = SuiteResult(suite, title, {**params, "runs": plan.runs}, env, plan.runners, rows,
                         out_dir=d, notes=notes)
    if d is not None:
        write_files(result)
        try:
            from foglayer.bench._figures import draw

            result.files += draw(result)
        except ImportError:
            result.notes.append("matplotlib is not installed (pip install 'foglayer[bench]'): "
                                "no figures")
    return result
