"""Human-readable reports for the CLI (rich is imported only here, only when needed)."""

from __future__ import annotations

from foglayer.runtime import Stats, format_size


def print_stats(stats: Stats) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title="fog run --stats", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("instructions (fuel)", f"{stats.fuel:,}" if stats.fuel is not None else "n/a")
    table.add_row("peak memory", format_size(stats.peak_memory))
    table.add_row("wall time", f"{stats.wall_time * 1000:.3f} ms")
    total = sum(stats.wasi_calls.values())
    table.add_row("WASI calls", f"{total:,}")
    for name, count in sorted(stats.wasi_calls.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {name}", f"{count:,}")
    console.print(table)
