"""``python -m foglayer.cli``: the same as ``fog``."""

from foglayer.cli import main

main()
