"""``python -m foglayer``: the same as ``fog``."""

from foglayer.cli import main

main()
