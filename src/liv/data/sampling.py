"""Pure index sampling of LIV training samples (no I/O): which 5 frames of an episode to use.

A sample is the frame indices ``[o_0, o_goal, o_k, o_k+1, o_text_goal]`` of one episode, as the
reference implementation draws them (see DESIGN.md section 3):

- ``"episode"`` (fine-tuning on whole demonstrations): o_0 = 0, o_goal = T-1, k uniform in [0, T-2],
  o_text_goal = T-1.
- ``"segment"`` (pre-training on long narrated clips): start uniform in [0, T-3], end uniform in
  [start+1, T-1], k uniform in [start, end-1], text-goal frame uniform in the last ``1 - alpha`` of the
  whole episode: [int(alpha T) - 1, T-1] (alpha = 0.95).
- ``degenerate_prob``: with this probability a sample uses the goal frame everywhere (the paper's
  degenerate videos, Proposition 1), which makes VIP on text goals an InfoNCE between goal frames
  and texts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

SampleMode = Literal["episode", "segment"]

FRAME_ROLES = ("initial", "goal", "k", "k_next", "text_goal")
"""Names of the 5 frame slots of a sample, in order."""


def min_length(mode: SampleMode) -> int:
    """Shortest episode a mode can sample from (2 frames for episodes, 3 for segments)."""
    return 2 if mode == "episode" else 3


def sample_indices(length: int, rng: np.random.Generator, mode: SampleMode = "episode",
                   alpha: float = 0.95, degenerate_prob: float = 0.0) -> np.ndarray:
    """Frame indices of one sample of an episode of ``length`` frames -> (5,) int64.

    Order: [o_0, o_goal, o_k, o_k+1, o_text_goal]. ``rng`` is a NumPy Generator (seeded by the caller
    for reproducibility). Raises ValueError for episodes shorter than :func:`min_length`.
    """
    if length < min_length(mode):
        raise ValueError(f"an episode of {length} frames is too short for mode '{mode}' "
                         f"(needs at least {min_length(mode)})")
    if degenerate_prob > 0 and rng.random() < degenerate_prob:
        return np.full(5, length - 1, dtype=np.int64)
    if mode == "episode":
        k = int(rng.integers(0, length - 1))
        return np.array([0, length - 1, k, k + 1, length - 1], dtype=np.int64)
    if mode == "segment":
        start = int(rng.integers(0, length - 2))
        end = int(rng.integers(start + 1, length))
        k = int(rng.integers(start, end))
        text_goal = int(rng.integers(max(0, int(alpha * length) - 1), length))
        return np.array([start, end, k, k + 1, text_goal], dtype=np.int64)
    raise ValueError(f"mode must be 'episode' or 'segment', got {mode!r}")


def unique_frames(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct frame indices of a sample and where each slot finds its frame.

    ``indices`` (5,) -> (distinct (U,) sorted, inverse (5,)) with ``distinct[inverse] == indices``. In
    fine-tuning o_goal and o_text_goal coincide, so a sample needs 4 decodes and 4 encodes, not 5.
    """
    distinct, inverse = np.unique(indices, return_inverse=True)
    return distinct, inverse.reshape(indices.shape)
