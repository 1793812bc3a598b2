"""`liv reward --progress-parquet`: per-frame LIV progress in the file LeRobot's reward-aligned BC (RA-BC) reads.

One row per frame of a LeRobot dataset, in the dataset's own order: ``index``, ``episode_index`` and
``frame_index`` (int64) are read from the dataset's data files themselves (every data file of a
multi-file v3.0 dataset), so they equal the dataset's exactly; ``progress_dense`` (float32 in [0, 1]) is
the episode's text-goal value S(phi(o_t), psi(l)) min-max normalised within the episode:
(S_t - min_t S) / (max_t S - min_t S), 0 for a constant curve. The model's name or path is in the parquet
schema metadata under ``reward_model_path``. The layout follows LeRobot's documented RA-BC progress file
(columns index, episode_index, frame_index, progress_dense; RA-BC came with LeRobot's 0.4 series). It is
checked against that documented layout, not by lerobot itself, which cannot be installed beside torch
2.13 (it needs Python >= 3.12 and torch < 2.12).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError, EpisodeDataset


def normalised_progress(values: Sequence[float]) -> np.ndarray:
    """(T,) values -> (T,) float32 in [0, 1], min-max normalised (all 0 when the values are constant)."""
    v = np.asarray(values, np.float64)
    span = v.max() - v.min() if v.size else 0.0
    return (np.zeros(v.shape) if span <= 0 else (v - v.min()) / span).astype(np.float32)


def dataset_rows(root: str | os.PathLike[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{episode_index: (index (T,), frame_index (T,)) int64, ordered by frame_index} from every data file of a
    LeRobot dataset. Raises DataError naming the file when a column is missing."""
    import pyarrow.parquet as pq

    files = sorted((Path(root) / "data").rglob("*.parquet"))
    if not files:
        raise DataError(str(Path(root) / "data"), "no parquet data files")
    parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in files:
        try:
            table = pq.read_table(path, columns=["index", "episode_index", "frame_index"])
        except (OSError, KeyError, ValueError) as e:
            raise DataError(str(path), f"cannot read index, episode_index, frame_index ({e})") from None
        ep = table.column("episode_index").to_numpy().astype(np.int64)
        idx = table.column("index").to_numpy().astype(np.int64)
        frame = table.column("frame_index").to_numpy().astype(np.int64)
        for e in np.unique(ep):
            rows = ep == e
            parts.setdefault(int(e), []).append((idx[rows], frame[rows]))
    out = {}
    for e, chunks in parts.items():
        idx, frame = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        order = np.argsort(frame, kind="stable")
        out[e] = (idx[order], frame[order])
    return out


def write_progress_parquet(path: str | os.PathLike[str], dataset: EpisodeDataset,
                           values: Mapping[int, Sequence[float]], model: str) -> Path:
    """Write the RA-BC progress file for ``dataset`` (LeRobot) from each episode's text-goal values
    (``values[position in dataset]`` (T,)) -> ``path``, written atomically.

    Raises ValueError for a dataset that is not LeRobot, DataError naming the episode when its rows in the
    data files disagree with its frames (count, or frame_index not 0..T-1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if dataset.format != "lerobot":
        raise ValueError("--progress-parquet needs a LeRobot dataset (its index and frame_index columns)")
    rows = dataset_rows(dataset.root)
    cols: dict[str, list[np.ndarray]] = {"index": [], "episode_index": [], "frame_index": [], "progress_dense": []}
    for position, ep in enumerate(dataset):
        e = int(ep.meta["episode_index"])
        idx, frame = rows.get(e, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        v = np.asarray(values[position]) if position in values else np.zeros(0)
        if len(idx) != len(ep) or not np.array_equal(frame, np.arange(len(ep))) or len(v) != len(ep):
            raise DataError(ep.source, f"episode {e} has {len(idx)} rows in the data files (frame_index "
                                       f"{frame[:3].tolist()}...) for {len(ep)} frames and {len(v)} values")
        cols["index"].append(idx)
        cols["episode_index"].append(np.full(len(ep), e, np.int64))
        cols["frame_index"].append(frame)
        cols["progress_dense"].append(normalised_progress(v))
    table = pa.table({k: pa.array(np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()})
    table = table.replace_schema_metadata({"reward_model_path": str(model)})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path
