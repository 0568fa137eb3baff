"""Small pure helpers for summarising samples."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between closest ranks; None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Iterable[float]) -> float | None:
    return percentile(values, 50)


def summarize(values: Sequence[float], quantiles: Sequence[float] = (50, 95, 99)) -> dict[str, float | int | None]:
    """Count, min, max, mean and the given percentiles (keys p50, p95, ...)."""
    summary: dict[str, float | int | None] = {
        "n": len(values),
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }
    for q in quantiles:
        summary[f"p{q:g}"] = percentile(values, q)
    return summary


def per(total: float, count: float) -> float | None:
    """total / count, or None when there is nothing to divide by."""
    return total / count if count else None
