"""``fog run``: parsed without click, to keep start-up short.

Click (with ``inspect``) would cost ~45 ms; even argparse costs ~5 ms (it imports gettext,
locale and shutil, and builds a formatter per flag). So a plain command line (known flags,
valid values, then MODULE) is read by :func:`_fast_parse`; anything else (``--help``, a
bad value, an unknown or abbreviated flag) goes to the argparse parser, which gives the
help and the one-line errors. Every other ``fog`` command goes through click in
``foglayer.cli._app``.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING, NoReturn

from foglayer.cli._args import parse_pairs, parse_preopens
from foglayer.cli._exit import exit_with, fail, report
from foglayer.errors import FogError

if TYPE_CHECKING:
    import argparse

# The flags _fast_parse reads: destination, and how a value is read (None: a switch).
_VALUE_FLAGS = {"--dir": "dirs", "--env": "envs", "--max-memory": "max_memory",
                "--fuel": "fuel", "--timeout": "timeout", "--checkpoint-to": "checkpoint_to",
                "--checkpoint-every": "checkpoint_every", "-o": "fmt", "--output": "fmt"}
_SWITCHES = {"--stats": "stats", "--checkpointable": "checkpointable",
             "--stop-after-checkpoint": "stop_after_checkpoint", "--with-files": "with_files",
             "--seal": "seal", "--seal-local": "seal_local"}
_NUMBERS = {"fuel": int, "timeout": float, "checkpoint_every": float}


def _fast_parse(argv: list[str]) -> SimpleNamespace | None:
    """``argv`` as the argparse parser would read it, or None if it is not plain."""
    ns = SimpleNamespace(dirs=[], envs=[], max_memory=None, fuel=None, timeout=None,
                         stats=False, fmt=None, checkpointable=False, checkpoint_to=None,
                         checkpoint_every=None, stop_after_checkpoint=False,
                         with_files=False, seal=False, seal_local=False)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, eq, value = argv[i].partition("=")
        if flag in _SWITCHES and not eq:
            setattr(ns, _SWITCHES[flag], True)
        elif flag in _VALUE_FLAGS:
            if not eq:
                i += 1
                if i == len(argv) or argv[i].startswith("-"):
                    return None  # argparse reads a leading "-" as a flag, not a value
                value = argv[i]
            dest = _VALUE_FLAGS[flag]
            if dest in ("dirs", "envs"):
                getattr(ns, dest).append(value)
                i += 1
                continue
            if dest in _NUMBERS:
                number = _number(_NUMBERS[dest], value)
                if number is None:
                    return None
                setattr(ns, dest, number)
            elif dest == "fmt" and value not in ("json", "yaml"):
                return None
            else:
                setattr(ns, dest, value)
        else:
            return None  # --help, --, an abbreviation, an unknown flag: argparse says
        i += 1
    if i == len(argv) or "--" in argv[i:]:
        return None  # no MODULE (argparse's error), or a "--" argparse would drop
    ns.module, ns.args = argv[i], argv[i + 1:]
    return ns


def _number(kind: type, text: str) -> int | float | None:
    """``text`` as a positive ``kind``, or None."""
    try:
        value = kind(text)
    except ValueError:
        return None
    return value if value > 0 else None


def _parser() -> argparse.ArgumentParser:
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # one line, as every fog error
            fail(f"fog run: {message}")

    p = _Parser(prog="fog run", description="Run a WASI command MODULE to completion; exit "
                "with its exit code.")
    p.add_argument("--dir", dest="dirs", action="append", default=[],
                   metavar="HOST[:GUEST][:ro]",
                   help="preopen a host directory (read-only with :ro); repeatable")
    p.add_argument("--env", dest="envs", action="append", default=[], metavar="KEY=VALUE",
                   help="set a guest environment variable; repeatable")
    p.add_argument("--max-memory", metavar="SIZE", help="cap linear memory (e.g. 64MiB)")
    p.add_argument("--fuel", type=_positive(int), metavar="N", help="cap executed instructions")
    p.add_argument("--timeout", type=_positive(float), metavar="SECONDS",
                   help="cap wall-clock time")
    p.add_argument("--stats", action="store_true",
                   help="print fuel, peak memory, wall time and WASI calls by kind (on stderr)")
    p.add_argument("-o", "--output", choices=("json", "yaml"), dest="fmt",
                   help="--stats as JSON (one line) or YAML, last on stderr; implies --stats "
                        "(docs/cli-output.md)")
    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpointable", action="store_true",
                   help="rewrite the module (once, cached) so that it can be checkpointed: "
                        "SIGUSR1 or `fog checkpoint PID` writes a snapshot")
    g.add_argument("--checkpoint-to", metavar="FILE",
                   help="where snapshots go (default: MODULE-PID.fogsnap here)")
    g.add_argument("--checkpoint-every", type=_positive(float), metavar="SECONDS",
                   help="write a snapshot periodically")
    g.add_argument("--stop-after-checkpoint", action="store_true",
                   help="exit right after the first snapshot is written (as a migration does)")
    g.add_argument("--with-files", action="store_true",
                   help="pack the preopened directories into each snapshot")
    g.add_argument("--seal", action="store_true",
                   help="seal each snapshot file at rest under a data key the controller "
                        "releases only after an affirming attestation of this node (a fog "
                        "node with --tee; FOG_NODE_DIR names its data dir if several): fog "
                        "restore opens it only on a node the controller releases it to")
    g.add_argument("--seal-local", action="store_true",
                   help="seal under this user's local key on this machine instead (weaker: no "
                        "attestation, the key is on this disk; works offline)")
    p.add_argument("module", metavar="MODULE")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    return p


def flags() -> list[str]:
    """Every flag of ``fog run`` (for shell completion)."""
    return [f for action in _parser()._actions for f in action.option_strings]


def _positive(kind: type) -> object:
    import argparse

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    parse.__name__ = kind.__name__
    return parse


def main(argv: list[str]) -> NoReturn:
    ns = _fast_parse(argv) or _parser().parse_args(argv)
    ns.stats = ns.stats or ns.fmt is not None
    try:
        _run(ns)
    except FogError as e:
        report(e)
    except KeyboardInterrupt:
        fail("interrupted", 130)


def _run(ns: argparse.Namespace | SimpleNamespace) -> NoReturn:
    from foglayer.runtime import Limits, parse_size
    from foglayer.runtime import run as run_module

    preopens, env = parse_preopens(ns.dirs), parse_pairs(ns.envs, "--env")
    max_memory = parse_size(ns.max_memory) if ns.max_memory else None
    limits = Limits(max_memory=max_memory, fuel=ns.fuel, timeout=ns.timeout)
    sys.stdout.flush()
    if (ns.checkpointable or ns.checkpoint_to or ns.checkpoint_every
            or ns.stop_after_checkpoint or ns.with_files or ns.seal or ns.seal_local):
        from foglayer.snapshot import CheckpointOptions, run_checkpointable

        options = CheckpointOptions(path=ns.checkpoint_to, every=ns.checkpoint_every,
                                    stop_after=ns.stop_after_checkpoint,
                                    with_files=ns.with_files,
                                    seal=sealer(ns.seal, ns.seal_local, ns.module))
        outcome = run_checkpointable(ns.module, ns.args, env=env, preopens=preopens,
                                     limits=limits, options=options, stats=ns.stats)
        finish_checkpointable(outcome, ns.stats, ns.fmt)
    result = run_module(ns.module, ns.args, env=env, preopens=preopens, stats=ns.stats,
                        limits=limits, on_stuck=_exit_interrupted)
    if ns.stats:
        from foglayer.cli._render import show_stats

        show_stats(result.stats, result.exit_code, ns.fmt)
    exit_with(result.exit_code)


def sealer(seal: bool, local: bool, module: str | None = None):
    """How snapshots are sealed, or None: ``--seal``, a data key the controller releases for
    ``module`` (attested now; None: for the module of the first snapshot, as restore does);
    ``--seal-local``, this machine's key."""
    if seal and local:
        fail("--seal and --seal-local: choose one")
    if local:
        from foglayer.trust import seal_snapshot_locally

        return seal_snapshot_locally
    if not seal:
        return None
    from foglayer.cluster import lazy_snapshot_sealer, snapshot_sealer

    return snapshot_sealer(module) if module is not None else lazy_snapshot_sealer()


def unsealer(options):
    """How ``fog restore`` opens a sealed snapshot file in memory; its further snapshots
    (``options``) are then sealed as it was. The cluster is imported only for a sealed file."""
    def unseal(blob: bytes, where: str) -> bytes:
        from foglayer.cluster import open_sealed_snapshot

        return open_sealed_snapshot(blob, where, options=options)

    return unseal


def _exit_interrupted() -> None:
    """Ctrl-C on a guest that cannot be stopped (computing without epochs): leave now, from
    the watcher thread, as ``fail`` would (one line, 130)."""
    sys.stdout.flush()
    os.write(2, b"fog: error: interrupted\n")
    os._exit(130)


def finish_checkpointable(outcome, stats: bool, fmt: str | None = None) -> NoReturn:
    """Report how a checkpointable run (or restore) ended, and exit as it did."""
    if stats:
        from foglayer.cli._render import show_stats

        show_stats(outcome.result.stats, outcome.exit_code, fmt)
    if outcome.stopped:
        print(f"fog: stopped after checkpoint {outcome.checkpoints[-1].path}", file=sys.stderr)
        sys.exit(0)
    exit_with(outcome.exit_code)
