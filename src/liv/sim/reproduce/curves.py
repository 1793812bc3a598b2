"""The paper's Figure 6: image-goal and text-goal value curves on demonstrations, averaged over tasks.

For each representation and each task, the first ``per_task`` successful demonstrations are taken; on
each, S(phi(o_t), phi(o_T)) (image goal: the last frame) and S(phi(o_t), psi(l)) (text goal) are the
cosine similarities of every frame, resampled to ``points`` evenly spaced fractions of the episode
(linear interpolation) and averaged. The paper (Section 5.2) reads LIV fine-tuning as near-linear,
monotone curves that meet at the goal, and CLIP fine-tuning as a text curve that jumps only at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

POINTS = 50


def value_curves(embeddings: Mapping[str, Any], per_task: int = 1, points: int = POINTS) -> dict[str, Any]:
    """Averaged curves from :func:`liv.sim.bc.embed_dataset` output -> {"time" (points,) in [0, 1], "image",
    "text" (points,) mean cosine similarities, "episodes" (count used)}. Raises ValueError with no
    successful episode of at least 2 frames."""
    image = np.asarray(embeddings["image"], np.float64)
    image /= np.linalg.norm(image, axis=1, keepdims=True).clip(1e-12)
    text = np.asarray(embeddings["text"], np.float64)
    text /= np.linalg.norm(text, axis=1, keepdims=True).clip(1e-12)
    episode = np.asarray(embeddings["episode"])
    succeeded = np.asarray(embeddings["succeeded"], bool)
    texts = [str(t) for t in embeddings["texts"]]
    taken: dict[str, int] = {}
    grid = np.linspace(0.0, 1.0, points)
    image_curves, text_curves = [], []
    for e, task_text in enumerate(texts):
        rows = np.flatnonzero(episode == e)
        if not succeeded[e] or len(rows) < 2 or taken.get(task_text, 0) >= per_task:
            continue
        taken[task_text] = taken.get(task_text, 0) + 1
        frames = image[rows]
        t = np.linspace(0.0, 1.0, len(rows))
        image_curves.append(np.interp(grid, t, frames @ frames[-1]))
        text_curves.append(np.interp(grid, t, frames @ text[e]))
    if not image_curves:
        raise ValueError("no successful demonstration with 2 frames or more for the value curves")
    return {"time": grid.tolist(), "image": np.mean(image_curves, 0).tolist(),
            "text": np.mean(text_curves, 0).tolist(), "episodes": len(image_curves)}


def curves_figure(curves: Mapping[str, Mapping[str, Sequence[float]]]):
    """A matplotlib Figure: one panel per representation (label -> :func:`value_curves` output), the image-goal
    and text-goal curves over the fraction of the episode."""
    from liv.eval.figures import new_figure

    n = len(curves)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = new_figure(3.2 * cols, 2.6 * rows)
    for i, (label, c) in enumerate(curves.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(c["time"], c["image"], label="image goal (last frame)")
        ax.plot(c["time"], c["text"], label="text goal")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("fraction of the episode", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.set_ylabel("cosine similarity S", fontsize=8)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
