"""The ``fog`` entry point: ``fog run`` takes a short path that never imports click."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from foglayer._runcli import main as run_main

        run_main(sys.argv[2:])
    from foglayer.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
