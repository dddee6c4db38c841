"""PNG figures in the style of the study: run time relative to native, per kernel or test,
sorted, with the geometric mean marked. matplotlib (Agg) is imported only here."""

from __future__ import annotations

from pathlib import Path

from foglayer.bench._harness import REFERENCE, RUNNERS, geomean
from foglayer.bench._report import SuiteResult

_STYLE = {  # runner -> (colour, hatch)
    "fog": ("#1f77b4", None),
    "wasmtime": ("#ff7f0e", "//"),
}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower()).strip("-")


def draw(result: SuiteResult) -> list[Path]:
    """One figure per group (PolyBench dataset, speedtest mode); returns the files written."""
    if result.out_dir is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wasm = [k for k in ("fog", "wasmtime") if k in result.runners]
    if REFERENCE not in result.runners or not wasm:
        return []
    files = []
    for group in result.groups():
        rows = [r for r in result.rows if r.group == group and r.ratio(wasm[0], REFERENCE)]
        if not rows:
            continue
        rows.sort(key=lambda r: r.ratio(wasm[0], REFERENCE) or 0)
        n, width = len(rows), 0.8 / len(wasm)
        fig, ax = plt.subplots(figsize=(max(7.0, 0.34 * n + 2), 4.2))
        top = 1.0
        for i, key in enumerate(wasm):
            vals = [r.ratio(key, REFERENCE) or 0.0 for r in rows]
            top = max(top, *vals)
            colour, hatch = _STYLE.get(key, ("grey", None))
            xs = [x + (i - (len(wasm) - 1) / 2) * width for x in range(n)]
            ax.bar(xs, vals, width, label=RUNNERS[key].label, color=colour if not hatch else "white",
                   edgecolor=colour, hatch=hatch, linewidth=0.8)
            gm = geomean(vals)
            if gm:
                ax.axhline(gm, color=colour, linestyle="--", linewidth=1.2,
                           label=f"geometric mean, {RUNNERS[key].label}: {gm:.2f}×")
        if "native-native" in result.runners:
            nat = [r.ratio("native-native", REFERENCE) for r in rows]
            ax.plot([x for x, v in enumerate(nat) if v], [v for v in nat if v], "k_",
                    markersize=9, label="native -mcpu=native")
        ax.axhline(1.0, color="black", linewidth=0.9)
        ax.set_xticks(range(n))
        ax.set_xticklabels([r.name for r in rows], rotation=60, ha="right", fontsize=8)
        ax.set_xlim(-0.6, n - 0.4)
        if top > 4:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, top * 1.25)  # room for the legend
        ax.set_ylabel("run time relative to native (-O3 -mcpu=baseline)")
        ax.set_title(f"{result.title} {group}".strip(), fontsize=10)
        ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = result.out_dir / f"{_slug(result.suite + '-' + group) if group else result.suite}.png"
        fig.savefig(path, dpi=130)
        plt.close(fig)
        files.append(path)
    return files
