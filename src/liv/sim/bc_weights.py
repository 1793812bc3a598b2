"""Reward-weighted behaviour cloning (RWR): per-frame weights from a value, as in VIP's offline RL (seed 003).

A frame's weight says how much better than usual its action turned out. From per-frame values V_t of an
episode (the LIV value S(phi(o_t), psi(l)) against the episode's text, or against its last frame as an
image goal; or the simulator's own dense reward read as a value, the oracle), the potential-based
reward R_t = V_t+1 - V_t summed over the next ``horizon`` steps (undiscounted, so it telescopes) gives
the advantage A_t = V_min(t+H, T-1) - V_t. Advantages are standardised within each task (minus the
task's mean, over its std), so that one ``beta`` suits models whose similarity scales differ by orders
of magnitude, and the weight is w_t = min(exp(beta * z_t), max_weight) (reward-weighted regression,
Peters & Schaal 2007, with the clip of AWR, Peng et al. 2019). The last frame of an episode has A = 0.

Weights are written in the per-frame parquet layout of LeRobot's RA-BC progress file (``index``,
``episode_index``, ``frame_index``, int64) with ``weight`` and ``advantage`` (float32) columns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_BETA = 1.0
DEFAULT_HORIZON = 20
DEFAULT_MAX_WEIGHT = 20.0
"""Defaults chosen offline by bench/rwr_weight_sweep.py on 40 expert and 40 degraded Meta-World episodes
(docs/sim_benchmark.md): at beta 1 a horizon of 20 steps put more of the weight on expert frames than
1, 5 or 10 for both the LIV value (57.9% vs 55.6% at 10; 48.8% of frames are expert) and the simulator's
reward (83.5% vs 80.1%) with no frame at the clip; beta 2-4 put 5-28% of the frames at the clip of 20."""


def liv_values(embeddings: dict[str, Any], goal: str = "text") -> np.ndarray:
    """(N,) float64 cosine similarity of every frame with its episode's goal: ``text`` (psi(l)) or ``image``
    (the episode's last frame), from :func:`liv.sim.bc_embeddings.embed_dataset` output."""
    image = np.asarray(embeddings["image"], np.float64)
    image = image / np.linalg.norm(image, axis=1, keepdims=True).clip(1e-12)
    episode = np.asarray(embeddings["episode"])
    if goal == "text":
        text = np.asarray(embeddings["text"], np.float64)
        text = text / np.linalg.norm(text, axis=1, keepdims=True).clip(1e-12)
        return np.einsum("nd,nd->n", image, text[episode])
    if goal != "image":
        raise ValueError(f"goal must be 'text' or 'image', got {goal!r}")
    last = np.zeros(int(episode.max()) + 1, dtype=np.int64)
    last[episode] = np.arange(len(episode))  # rows of an episode are contiguous and in order
    return np.einsum("nd,nd->n", image, image[last[episode]])


def advantages(values: np.ndarray, episode: np.ndarray, horizon: int = DEFAULT_HORIZON) -> np.ndarray:
    """(N,) values, (N,) episode ids (contiguous rows per episode) -> (N,) A_t = V_min(t+H, last) - V_t."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    values, episode = np.asarray(values, np.float64), np.asarray(episode)
    out = np.zeros(len(values))
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(values)]):
        t = np.arange(a, b)
        out[a:b] = values[np.minimum(t + horizon, b - 1)] - values[a:b]
    return out


def rwr_weights(adv: np.ndarray, episode: np.ndarray, task_of_episode: Sequence[str], beta: float = DEFAULT_BETA,
                max_weight: float = DEFAULT_MAX_WEIGHT) -> np.ndarray:
    """(N,) advantages -> (N,) float64 weights min(exp(beta z), max_weight), z standardised per task (a task
    whose advantages are all equal gets z = 0, weight 1). ``task_of_episode``: each episode id's task."""
    if max_weight <= 0:
        raise ValueError(f"max_weight must be > 0, got {max_weight}")
    adv, episode = np.asarray(adv, np.float64), np.asarray(episode)
    tasks = np.asarray(list(task_of_episode), dtype=object)[episode]
    z = np.zeros(len(adv))
    for task in dict.fromkeys(tasks.tolist()):
        rows = tasks == task
        std = adv[rows].std()
        z[rows] = (adv[rows] - adv[rows].mean()) / std if std > 0 else 0.0
    return np.minimum(np.exp(beta * z), max_weight)


def frame_weights(embeddings: dict[str, Any], source: str = "liv", goal: str = "text",
                  horizon: int = DEFAULT_HORIZON, beta: float = DEFAULT_BETA,
                  max_weight: float = DEFAULT_MAX_WEIGHT) -> dict[str, np.ndarray]:
    """Weights of every frame of an embedded dataset -> {"weight", "advantage", "value"} (N,) float64.

    ``source``: liv (the model's value against ``goal``) or sim (the recorded ``next.reward``, the
    simulator's dense reward, read as a value: the oracle). Raises ValueError when ``source`` is sim and
    the dataset has no rewards."""
    if source == "liv":
        values = liv_values(embeddings, goal)
    elif source == "sim":
        if "rewards" not in embeddings or len(np.asarray(embeddings["rewards"])) != len(embeddings["episode"]):
            raise ValueError("the dataset has no next.reward column: weighting by the simulator's reward needs data "
                             "from `liv sim generate`")
        values = np.asarray(embeddings["rewards"], np.float64)
    else:
        raise ValueError(f"source must be 'liv' or 'sim', got {source!r}")
    adv = advantages(values, embeddings["episode"], horizon)
    return {"weight": rwr_weights(adv, embeddings["episode"], [str(t) for t in embeddings["texts"]], beta, max_weight),
            "advantage": adv, "value": values}


def write_weights(path: str | os.PathLike[str], episode_index: Sequence[int], lengths: Sequence[int],
                  weights: dict[str, np.ndarray], model: str) -> Path:
    """Write per-frame weights as parquet (LeRobot RA-BC layout: index, episode_index, frame_index int64, plus
    weight and advantage float32; the model in the schema metadata under ``reward_model_path``), atomically.

    ``episode_index``: each episode's LeRobot index, ``lengths`` its frame count, in dataset order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lengths = [int(n) for n in lengths]
    n = sum(lengths)
    if len(weights["weight"]) != n:
        raise ValueError(f"{len(weights['weight'])} weights for {n} frames")
    table = pa.table({
        "index": pa.array(np.arange(n, dtype=np.int64)),
        "episode_index": pa.array(np.repeat(np.asarray(episode_index, np.int64), lengths)),
        "frame_index": pa.array(np.concatenate([np.arange(k, dtype=np.int64) for k in lengths]) if n else
                                np.zeros(0, np.int64)),
        "weight": pa.array(np.asarray(weights["weight"], np.float32)),
        "advantage": pa.array(np.asarray(weights["advantage"], np.float32)),
    }).replace_schema_metadata({"reward_model_path": str(model)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path
