"""The opposite-pair figure: does a reward read the instruction, or only recognise the scene?

For a pair of tasks that share a scene and differ in direction ("open the drawer" / "close the drawer"),
one held-out episode of each is scored against BOTH texts by each model. A reward that understands the
language rises along the episode for the episode's own text and stays below it for the opposite one;
a reward that only recognises the scene gives the two texts the same shape.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from liv.data.episodes import EpisodeDataset
from liv.model import LIVModel


def first_episode_of(dataset: EpisodeDataset, text: str, successful: bool = True) -> int | None:
    """Index of the first episode with this text (and a success flag not False when ``successful``), or None."""
    for i, ep in enumerate(dataset):
        if ep.text == text and not (successful and ep.succeeded is False):
            return i
    return None


def pair_curves(model: LIVModel, frames: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """Cosine similarity of every frame to every text: frames (T, H, W, 3) uint8 -> (T, len(texts)) float64."""
    return model.values(frames, list(texts)).double().numpy()


def plot_pair_figure(models: Mapping[str, LIVModel], dataset: EpisodeDataset, pair: tuple[str, str],
                     path: str | os.PathLike, thumbnails: int = 5) -> Path:
    """Write a PNG: one column per model, one row per task of ``pair`` (two texts of one scene).

    Each panel plots S(o_t, text) over the frame index t of the first successful episode of that row's
    task, for its own text (solid) and the opposite one (dashed); a strip of ``thumbnails`` evenly spaced
    frames heads each row. Raises ValueError when ``dataset`` has no successful episode of either text.
    Returns the path written.
    """
    from liv.eval.figures import new_figure, png_bytes, short_label

    rows = []
    for own in pair:
        index = first_episode_of(dataset, own)
        if index is None:
            raise ValueError(f"{dataset.root}: no successful episode of {own!r} to plot")
        rows.append((own, index, dataset[index].all_frames()))
    names = list(models)
    fig = new_figure(3.2 * (len(names) + 1), 2.6 * len(rows))
    grid = fig.add_gridspec(len(rows), len(names) + 1, width_ratios=[1.3] + [1] * len(names))
    for r, (own, index, frames) in enumerate(rows):
        other = pair[1 - r]
        picks = np.linspace(0, len(frames) - 1, thumbnails).round().astype(int)
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(np.concatenate([frames[i] for i in picks], axis=1))
        ax.set_axis_off()
        ax.set_title(f"episode {index}: {short_label(own, 30)}", fontsize=9)
        for c, name in enumerate(names):
            curves = pair_curves(models[name], frames, [own, other])
            ax = fig.add_subplot(grid[r, c + 1])
            ax.plot(curves[:, 0], color="tab:green", linewidth=2, label=f"“{short_label(own, 24)}”")
            ax.plot(curves[:, 1], color="tab:red", linewidth=1.6, linestyle="--", label=f"“{short_label(other, 24)}”")
            ax.set_title(short_label(name, 40), fontsize=9)
            ax.set_xlabel("frame", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if c == 0:
                ax.set_ylabel("similarity S", fontsize=8)
                ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(fig))
    return path
