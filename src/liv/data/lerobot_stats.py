"""Feature statistics of a LeRobot dataset, as LeRobot's ``compute_episode_stats`` makes them: per
feature min, max, mean, std, count (and quantiles q01..q99 for v3.0) over an episode's frames (images:
per channel on up to 100 evenly spaced frames, scaled to [0, 1], shape (3, 1, 1)), aggregated over
episodes with the pooled-variance formula."""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)


def value_stats(x: np.ndarray, quantiles: bool) -> dict[str, np.ndarray]:
    """min/max/mean/std(/quantiles) over axis 0 of (N, D) values -> each (D,), count (1,)."""
    x = x.astype(np.float64)
    out = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    if quantiles:
        values = np.quantile(x, list(QUANTILES), axis=0)  # one partition for all quantiles
        out.update({f"q{round(q * 100):02d}": v for q, v in zip(QUANTILES, values)})
    return out


def uint8_stats(pixels: np.ndarray, quantiles: bool) -> dict[str, np.ndarray]:
    """Exact stats of (N, 3) uint8 pixels scaled to [0, 1], from 256-bin histograms -> each (3,).

    Equal to :func:`value_stats` on ``pixels / 255`` (quantiles with numpy's linear interpolation), but a
    histogram pass instead of sorting millions of values.
    """
    levels = np.arange(256, dtype=np.float64) / 255.0
    hist = np.stack([np.bincount(pixels[:, c], minlength=256) for c in range(3)]).astype(np.float64)  # (3, 256)
    n = hist[0].sum()
    mean = hist @ levels / n
    var = hist @ levels**2 / n - mean**2
    present = hist > 0
    out = {"min": levels[present.argmax(1)], "max": levels[255 - present[:, ::-1].argmax(1)], "mean": mean,
           "std": np.sqrt(np.maximum(var, 0.0)), "count": np.array([int(n)])}
    if quantiles:
        cum = hist.cumsum(1)
        for q in QUANTILES:
            pos = q * (n - 1)
            lo, frac = int(np.floor(pos)), pos - np.floor(pos)
            # value of the k-th smallest sample (0-based): first level whose cumulative count exceeds k
            v_lo = levels[(cum > lo).argmax(1)]
            v_hi = levels[(cum > min(lo + 1, n - 1)).argmax(1)]
            out[f"q{round(q * 100):02d}"] = v_lo + frac * (v_hi - v_lo)
    return out


def image_stats(frames: np.ndarray, quantiles: bool) -> dict[str, np.ndarray]:
    """Per-channel stats of (T, H, W, 3) uint8 frames scaled to [0, 1] -> each (3, 1, 1), count (1,)."""
    # Like LeRobot: at most 100 evenly spaced frames, large images strided down to ~150 px.
    picks = np.round(np.linspace(0, len(frames) - 1, min(100, len(frames)))).astype(int)
    step = max(1, max(frames.shape[1:3]) // 150) if max(frames.shape[1:3]) >= 300 else 1
    out = uint8_stats(frames[picks, ::step, ::step].reshape(-1, 3), quantiles)
    return {k: v if k == "count" else v.reshape(3, 1, 1) for k, v in out.items()} | {"count": np.array([len(picks)])}


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset stats from episode stats: pooled mean/variance, global min/max, quantile envelope."""
    counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)
    shape = (-1,) + (1,) * (per_episode[0]["mean"].ndim)
    w = counts.reshape(shape)
    means = np.stack([s["mean"] for s in per_episode])
    mean = (means * w).sum(0) / counts.sum()
    var = ((np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2) * w).sum(0) / counts.sum()
    out = {"min": np.stack([s["min"] for s in per_episode]).min(0),
           "max": np.stack([s["max"] for s in per_episode]).max(0),
           "mean": mean, "std": np.sqrt(var), "count": np.array([int(counts.sum())])}
    for key in (k for k in per_episode[0] if k.startswith("q")):
        values = np.stack([s[key] for s in per_episode])
        # Exact pooled quantiles are unknowable from summaries; LeRobot keeps the outer envelope.
        out[key] = values.min(0) if int(key[1:]) <= 50 else values.max(0)
    return out


def jsonable_stats(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    """{feature: {stat: array}} -> the same with lists, for JSON."""
    return {f: {k: v.tolist() for k, v in s.items()} for f, s in stats.items()}
