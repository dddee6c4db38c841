"""How ``fog`` ends: exit codes, and one-line reports of errors (no click: the run path)."""

from __future__ import annotations

import sys
from typing import NoReturn

from foglayer.errors import FogError

EXIT_USAGE = 2  # a user's mistake: bad flag, missing file, bad module
EXIT_TRAP = 134  # as wasmtime: 128 + SIGABRT
EXIT_LIMIT = 137  # a limit (memory, fuel, time) stopped the app


# A library error's knob (see foglayer.errors) as the flag that sets it ...
_FLAGS = {"dirs": "--dir ...:{subject}", "files_to": "--files-to", "module": "--module",
          "max_memory": "--max-memory", "fuel": "--fuel", "timeout": "--timeout",
          "nodes": "--nodes", "sites": "--sites", "tee": "--tee", "token": "--token",
          "ui_port": "--ui-port", "seal_local": "--seal-local", "checkpoint_to": "--checkpoint-to"}
# ... and what to do with it.
_HINTS = {"max_memory": "raise --max-memory", "fuel": "raise --fuel", "timeout": "raise --timeout",
          "force": "use --force to resume anyway", "module": "pass it with --module",
          "dirs": "remap it with --dir HOST:{subject}",
          "files_to": "unpack them with --files-to DIR (or --dir HOST:{subject})",
          "server": "run `fog up`, or pass --server URL and --creds FILE",
          "checkpointable": "start it with fog run --checkpointable"}


def message(e: FogError) -> str:
    """``e`` as one line in the words of the ``fog`` command: the flag at fault first, the
    flag that gets past it last."""
    text = str(e)
    subject = getattr(e, "subject", None) or "GUEST"
    flag = _FLAGS.get(getattr(e, "where", None) or "")
    if flag:
        text = f"{flag.format(subject=subject)}: {text}"
    hint = _HINTS.get(getattr(e, "remedy", None) or "")
    if hint:
        text = f"{text}; {hint.format(subject=subject)}"
    return text


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    sys.stdout.flush()
    print(f"fog: error: {message}", file=sys.stderr)
    sys.exit(code)


def report(e: FogError) -> NoReturn:
    """Print ``e`` as one line (a trap adds its Wasm backtrace) and exit accordingly."""
    from foglayer.runtime import LimitExceeded, Trapped

    if isinstance(e, Trapped):
        sys.stdout.flush()
        limit = isinstance(e, LimitExceeded)
        print(f"fog: {'limit' if limit else 'trap'}: {message(e)}", file=sys.stderr)
        if e.backtrace:
            print("wasm backtrace:", file=sys.stderr)
            for i, frame in enumerate(e.backtrace):
                print(f"  {i}: {frame}", file=sys.stderr)
        sys.exit(EXIT_LIMIT if limit else EXIT_TRAP)
    fail(message(e))


def exit_with(code: int) -> NoReturn:
    """Exit as the guest did (its exit code, as the shell sees it)."""
    sys.exit(code & 0xFF if code >= 0 else 1)
