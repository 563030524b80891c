"""The report's PNGs (matplotlib, Agg backend): throughput by record size, broker CPU per
record, and end-to-end latency percentiles. Bars are medians; the error bars span min–max.
A plot with nothing to show is not drawn.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import stats  # noqa: E402

if TYPE_CHECKING:
    from .report import Results

COLORS = {"odradek": "#2b8cbe", "tansu": "#e6550d", "kafka": "#31a354"}
SIZES = ((100, "100 B"), (1000, "1 KB"), (10000, "10 KB"))


def _bars(ax: Any, res: Results, groups: list[tuple[str, str]], key: str,
          ylabel: str, log: bool = False) -> bool:
    """Grouped bars: one group per (label, step), one bar per broker. False if all empty."""
    width = 0.8 / max(len(res.names), 1)
    drawn = False
    for i, name in enumerate(res.names):
        meds, lows, highs = [], [], []
        for _label, step in groups:
            found = stats.summary(res.values(step, name, key))
            med, lo, hi = found if found else (0.0, 0.0, 0.0)
            meds.append(med)
            lows.append(med - lo)
            highs.append(hi - med)
            drawn = drawn or found is not None
        xs = [g + i * width - 0.4 + width / 2 for g in range(len(groups))]
        ax.bar(xs, meds, width, yerr=[lows, highs], capsize=3, label=name,
               color=COLORS.get(name))
    ax.set_xticks(range(len(groups)), [label for label, _ in groups])
    ax.set_ylabel(ylabel)
    if log and drawn:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.01)  # bars grow from a fixed floor, not from the smallest one
    ax.grid(axis="y", alpha=0.3)
    return drawn


def _figure(path: Path, panels: list[tuple[str, Callable[[Any], bool]]], cols: int) -> bool:
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    drawn = False
    for ax, (title, draw) in zip(axes.flat, panels, strict=False):
        drawn = draw(ax) or drawn
        ax.set_title(title)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if drawn:
        axes.flat[0].legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def draw(res: Results, folder: Path) -> list[tuple[str, str]]:
    """Draw every plot into ``folder``; return (file name, title) of those drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    done = []

    def sizes(phase: str) -> list[tuple[str, str]]:
        return [(label, f"size/{n}/{phase}") for n, label in SIZES]

    def panel(phase: str, key: str, ylabel: str) -> Callable[[Any], bool]:
        return lambda ax: _bars(ax, res, sizes(phase), key, ylabel)

    if _figure(folder / "throughput.png", [
        ("produce, records/s", panel("produce", "records_per_s", "records/s")),
        ("produce, MB/s", panel("produce", "mb_per_s", "MB/s")),
        ("consume, records/s", panel("consume", "records_per_s", "records/s")),
        ("consume, MB/s", panel("consume", "mb_per_s", "MB/s")),
    ], cols=2):
        done.append(("throughput.png", "Throughput by record size"))

    cpu_steps = [(f"{label}\n{phase}", f"size/{n}/{phase}")
                 for phase in ("produce", "consume") for n, label in SIZES]
    if _figure(folder / "cpu.png", [
        ("broker CPU per record (µs, log scale)",
         lambda ax: _bars(ax, res, cpu_steps, "cpu_us_per_record", "µs/record", log=True)),
    ], cols=1):
        done.append(("cpu.png", "Broker CPU per record"))

    def latency(ax: Any, step: str) -> bool:
        width = 0.8 / max(len(res.names), 1)
        drawn = False
        for i, name in enumerate(res.names):
            meds = []
            for key in ("p50_ms", "p99_ms", "p999_ms"):
                found = stats.summary(res.values(step, name, key))
                meds.append(found[0] if found else 0.0)
                drawn = drawn or found is not None
            xs = [g + i * width - 0.4 + width / 2 for g in range(3)]
            ax.bar(xs, meds, width, label=name, color=COLORS.get(name))
        ax.set_xticks(range(3), ["p50", "p99", "p99.9"])
        ax.set_ylabel("ms")
        if drawn:
            ax.set_yscale("log")
            ax.set_ylim(bottom=0.1)
        ax.grid(axis="y", alpha=0.3)
        return drawn

    latency_panels: list[tuple[str, Callable[[Any], bool]]] = [
        (f"{rate:,} records/s", functools.partial(latency, step=f"latency/{rate}/fixed rate"))
        for rate in (500, 2000, 20000)
    ]
    if _figure(folder / "latency.png", latency_panels, cols=3):
        done.append(("latency.png", "End-to-end latency percentiles"))
    return done
