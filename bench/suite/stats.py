"""Median, minimum and maximum of repeated measurements, and how the report prints them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def summary(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(median, min, max), or None for no values."""
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def number(value: float) -> str:
    """Three significant digits, thousands separated: 1,230,000 / 45.6 / 0.0123."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}" if magnitude < 1e6 else f"{value / 1e6:,.2f} M"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(values: Sequence[float]) -> str:
    """``median [min–max]``, or the single value when there is only one."""
    found = summary(values)
    if found is None:
        return "–"
    med, lo, hi = found
    if len(values) == 1 or lo == hi:
        return number(med)
    return f"{number(med)} [{number(lo)}–{number(hi)}]"
