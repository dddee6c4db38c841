"""The ``fog`` command: it parses, calls one function of a package, and prints.

- ``_app``: the click app (every command but ``fog run``);
- ``_run``: ``fog run``, parsed with argparse on a path that never imports click (cold start);
- ``_args``: the shared grammar of flags (``--dir HOST[:GUEST][:ro]``, ``KEY=VALUE``);
- ``_exit``: exit codes and one-line error reports;
- ``_render``: what people see: tables, ``--stats``, ``fog deploy``'s lines, ``fog up``'s view.

The cluster commands talk through ``foglayer.cluster.SyncClient``, on credentials resolved once.

This module stays import-light: ``fog run`` goes through it.
"""

from __future__ import annotations

import sys

_CHECKPOINT_FLAGS = ("--checkpointable", "--checkpoint-to", "--checkpoint-every",
                     "--stop-after-checkpoint", "--with-files", "--seal", "--seal-local")


def main(argv: list[str] | None = None) -> None:
    """The ``fog`` entry point: ``fog run`` takes the short path, the rest goes to click."""
    args = sys.argv[1:] if argv is None else argv
    if args and (args[0] == "restore" or args[0] == "run" and any(
            a.split("=", 1)[0] in _CHECKPOINT_FLAGS for a in args[1:])):
        # A checkpoint request (SIGUSR1) may come before the run can take it: hold it
        # pending from the first moment; the run takes it once its handler is in place.
        import signal

        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    if args and args[0] == "run":
        from foglayer.cli._run import main as run_main

        run_main(args[1:])
    from foglayer.cli._app import main as app_main

    app_main(args)


__all__ = ["main"]
