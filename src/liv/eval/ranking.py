"""Trajectory ranking and agreement with ground-truth progress: reward-quality figures the field reports
beside VOC (GVL, Robometer, the 2025 reward-objectives study).

- Pairwise accuracy: over every (successful, failed) pair of episodes of a task, the fraction whose
  success scores strictly higher (final value, or mean value over the episode). Unlike the AUROC, a tie
  counts as a miss: a reward that scores everything equally gets 0, not 0.5.
- Kendall's tau-b between an episode's value and its outcome (1 success, 0 failure), SciPy's
  ``kendalltau``: it accounts for the ties a binary outcome has.
- Progress correlation: Pearson and Spearman correlation, within an episode, of the value curve with the
  data's ground-truth progress signal (``task_progress`` of generated data, else a dense reward such as
  a simulator's ``next.reward``), averaged over episodes.

A figure that cannot be measured (a task without failures, an episode without progress) is None, never
0 or 1. Failures of generated data carry a kind (:data:`liv.sim.generate.FAILURE_KINDS`), read from the
dataset's ``meta/liv_generation.json``; ranking figures are also split by it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def pairwise_accuracy(success: Sequence[float], failure: Sequence[float]) -> float | None:
    """Fraction of (s, f) pairs with s > f (ties are misses), in [0, 1]; None without a success and a failure."""
    s, f = np.asarray(success, np.float64), np.asarray(failure, np.float64)
    if s.size == 0 or f.size == 0:
        return None
    return float((s[:, None] > f[None, :]).mean())


def outcome_tau(values: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Kendall's tau-b between episode values and outcomes; None without both outcomes or with constant values."""
    from scipy.stats import kendalltau

    v, o = np.asarray(values, np.float64), np.asarray(outcomes, bool).astype(np.float64)
    if v.size < 2 or o.min() == o.max() or np.all(v == v[0]):
        return None
    return float(kendalltau(v, o).statistic)


def progress_correlation(values: Sequence[float], progress: Sequence[float]) -> dict[str, float] | None:
    """{"pearson", "spearman"} of one episode's value curve with its progress signal; None when either is
    constant or shorter than 2 (nothing to correlate)."""
    from scipy.stats import pearsonr, spearmanr

    v, p = np.asarray(values, np.float64), np.asarray(progress, np.float64)
    if v.shape != p.shape:
        raise ValueError(f"values {v.shape} and progress {p.shape} must have the same shape")
    if v.size < 2 or np.all(v == v[0]) or np.all(p == p[0]):
        return None
    return {"pearson": float(pearsonr(v, p).statistic), "spearman": float(spearmanr(v, p).statistic)}


def failure_kinds(root: str | os.PathLike[str], count: int) -> list[str | None]:
    """Each episode's failure kind from a generated dataset's ``meta/liv_generation.json`` (None for experts,
    for data without the record, or when the record does not list ``count`` episodes)."""
    path = Path(root) / "meta" / "liv_generation.json"
    try:
        episodes = json.loads(path.read_text())["episodes"]
    except (OSError, ValueError, KeyError, TypeError):
        return [None] * count
    if len(episodes) != count:
        return [None] * count
    return [e.get("failure_kind", "failure") if e.get("kind") == "failure" else None for e in episodes]


def ranking(episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Ranking figures of one task's episodes (each {"succeeded", "final", "mean", "kind"}) -> {"pairwise_final",
    "pairwise_mean", "kendall_tau_final", "num_success", "num_failure", "by_kind": {kind: {"pairwise_final",
    "pairwise_mean", "num_failure"}}} (figures None where not measurable)."""
    wins = [e for e in episodes if e["succeeded"] is True]
    losses = [e for e in episodes if e["succeeded"] is False]
    labelled = wins + losses
    by_kind: dict[str, Any] = {}
    for kind in dict.fromkeys(e.get("kind") or "failure" for e in losses):
        mine = [e for e in losses if (e.get("kind") or "failure") == kind]
        by_kind[kind] = {"pairwise_final": pairwise_accuracy([e["final"] for e in wins], [e["final"] for e in mine]),
                         "pairwise_mean": pairwise_accuracy([e["mean"] for e in wins], [e["mean"] for e in mine]),
                         "num_failure": len(mine)}
    return {"pairwise_final": pairwise_accuracy([e["final"] for e in wins], [e["final"] for e in losses]),
            "pairwise_mean": pairwise_accuracy([e["mean"] for e in wins], [e["mean"] for e in losses]),
            "kendall_tau_final": outcome_tau([e["final"] for e in labelled], [e["succeeded"] for e in labelled]),
            "num_success": len(wins), "num_failure": len(losses), "by_kind": by_kind}


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of the values that are not None, or None when there are none."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
