"""Success-rate statistics of `liv reproduce`: per-seed mean and std, a Wilson interval, and orderings.

A cell (one representation's LCBC success, one reward's planning success) is a set of binary outcomes
grouped by seed. Its 95% interval is the Wilson score interval over all its rollouts pooled (SciPy's
``binomtest(...).proportion_ci(method="wilson")``): it stays inside [0, 1] and keeps its coverage near
0 and 1, where the normal approximation fails, and it is what a reviewer can recompute from the counts.
It treats rollouts as independent, so it does not widen for variation between training seeds; the
per-seed mean and std are reported beside it for that.

An ordering "A > B" is claimed only when the two intervals do not overlap (a conservative test: two
95% intervals that just touch correspond to a difference significant at well below 5%); otherwise the
pair is "not separated".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE = 0.95


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a success rate from ``successes`` of ``n`` -> (low, high) in [0, 1].

    Raises ValueError for n < 1 or successes outside [0, n]."""
    from scipy.stats import binomtest

    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def success_cell(per_seed: Sequence[Sequence[bool]], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Outcomes grouped by seed -> the cell's statistics.

    Returns {"rate": pooled success rate, "successes", "n", "low", "high" (Wilson interval), "half_width"
    (the larger distance from rate to a bound), "mean", "std" (of the per-seed rates; population std),
    "per_seed" (rates)}, rates in [0, 1]. Raises ValueError when there is no outcome at all."""
    groups = [[bool(x) for x in g] for g in per_seed]
    flat = [x for g in groups for x in g]
    if not flat:
        raise ValueError("a cell needs at least one outcome")
    k, n = sum(flat), len(flat)
    low, high = wilson_interval(k, n, confidence)
    rates = np.array([np.mean(g) for g in groups if g], dtype=np.float64)
    rate = k / n
    return {"rate": rate, "successes": k, "n": n, "low": low, "high": high,
            "half_width": max(rate - low, high - rate), "mean": float(rates.mean()), "std": float(rates.std()),
            "per_seed": [float(r) for r in rates]}


def ordering(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> dict[str, Any]:
    """Compare two cells (from :func:`success_cell`) -> {"claim": "A > B", "B > A" or "not separated",
    "separated": bool, "difference": rate_a - rate_b}, with the cells' names in the claim."""
    if a["low"] > b["high"]:
        claim, separated = f"{name_a} > {name_b}", True
    elif b["low"] > a["high"]:
        claim, separated = f"{name_b} > {name_a}", True
    else:
        claim, separated = f"{name_a} vs {name_b}: not separated", False
    return {"claim": claim, "separated": separated, "difference": a["rate"] - b["rate"]}


def format_cell(cell: dict[str, Any] | None) -> str:
    """A cell as "rate [low, high]" in percent with no decimals, or "–" when missing."""
    if cell is None:
        return "–"
    return f"{100 * cell['rate']:.0f} [{100 * cell['low']:.0f}, {100 * cell['high']:.0f}]"


def rollouts_for_half_width(half_width: float, confidence: float = CONFIDENCE) -> int:
    """The fewest rollouts whose Wilson interval at a 50% rate (the widest) is at most +-``half_width``."""
    n = 1
    while True:
        low, high = wilson_interval(n // 2, n, confidence) if n % 2 == 0 else (0.0, 1.0)
        if n % 2 == 0 and max(0.5 - low, high - 0.5) <= half_width:
            return n
        n += 1
