"""Example programs shipped with foglayer (C sources, built on demand)."""

from pathlib import Path

EXAMPLES = Path(__file__).parent


def example(name: str) -> Path:
    """The path of a bundled C example, e.g. ``example("mandelbrot")``."""
    return EXAMPLES / f"{name}.c"
