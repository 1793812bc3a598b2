"""Write episodes as a LeRobot dataset, codebase version v2.1 or v3.0, in the layout LeRobot loads.

What is written (see :mod:`liv.data.lerobot` for the layout of each version):

- ``meta/info.json`` with every feature's dtype, shape and names, the camera's video info, totals,
  ``splits``, ``data_path``/``video_path`` templates and chunking settings; written last, so a folder
  left by a failed write is not mistaken for a dataset.
- tasks (v2.1 ``tasks.jsonl``; v3.0 ``tasks.parquet`` with the pandas index metadata LeRobot's
  ``pd.read_parquet`` needs to index tasks by their string), episode metadata, statistics (v2.1
  per-episode ``episodes_stats.jsonl``; v3.0 ``stats.json`` plus per-episode ``stats/...`` columns
  and the quantiles q01..q99 newer LeRobot versions normalise with).
- parquet data with ``timestamp`` (float32 seconds), ``frame_index``, ``episode_index``, ``index``,
  ``task_index`` (int64), plus ``action``, ``observation.state`` (fixed-size float32 lists) and
  ``next.success`` (bool) and ``next.reward`` (float32) when given; mp4 video (libx264, yuv420p,
  ``gop`` frames between keyframes).
  v3.0 concatenates episodes into files, a new file when ``episodes_per_file`` or the size limit
  would be exceeded, ``chunks_size`` files per chunk folder, as LeRobot does.

Statistics follow LeRobot's ``compute_episode_stats`` (see :mod:`liv.data.lerobot_stats`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError
from liv.data.lerobot_stats import aggregate_stats, image_stats, jsonable_stats, value_stats

V21_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V30_DATA = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V30_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
_V30_EPISODES = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
_EPISODE_KEYS = {"frames", "task", "actions", "states", "success", "rewards", "progress"}
PROGRESS_COLUMN = "task_progress"
"""The per-frame ground-truth task progress column (float32 in [0, 1], of the frame's own state): not a
LeRobot standard name, and not under ``observation.`` so that no policy takes it for an input."""
_MB = 1024 * 1024


@dataclass
class _Ep:
    frames: np.ndarray  # (T, H, W, 3) uint8
    task: str
    actions: np.ndarray | None  # (T, A) float32
    states: np.ndarray | None  # (T, S) float32
    success: np.ndarray | None  # (T,) bool
    rewards: np.ndarray | None = None  # (T,) float32
    progress: np.ndarray | None = None  # (T,) float32


def _vector(value, name: str, where: str, length: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.ndim != 2 or arr.shape[0] != length or not np.issubdtype(arr.dtype, np.number):
        raise DataError(where, f"{name} must be ({length}, D) numbers (one row per frame), got {arr.shape} {arr.dtype}")
    if not np.isfinite(arr).all():
        raise DataError(where, f"{name} has NaN or infinite values")
    return arr.astype(np.float32)


def _scalars(value, name: str, where: str, length: int) -> np.ndarray | None:
    """One finite number per frame -> (T,) float32, or None."""
    if value is None:
        return None
    arr = _vector(np.asarray(value).reshape(-1, 1) if np.ndim(value) == 1 else value, name, where, length)
    if arr.shape[1] != 1:
        raise DataError(where, f"{name} must be ({length},) numbers, got {arr.shape}")
    return arr[:, 0]


def _check_episode(ep, i: int, first: _Ep | None) -> _Ep:
    """Validate episode ``i`` (a dict) -> _Ep; its shapes and optional fields must match ``first``'s."""
    where = f"episodes[{i}]"
    if not isinstance(ep, dict):
        raise DataError(where, f"must be a dict with keys frames, task (and actions, states, success), "
                               f"got {type(ep).__name__}")
    if set(ep) - _EPISODE_KEYS or "frames" not in ep or "task" not in ep:
        raise DataError(where, f"keys must be frames, task and optionally actions, states, success, rewards, "
                               f"progress; got "
                               f"{sorted(ep)}")
    frames = np.asarray(ep["frames"])
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise DataError(where, f"frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise DataError(where, f"frames are {frames.shape[2]}x{frames.shape[1]} px; yuv420p video needs an even "
                               "width and height")
    if not isinstance(ep["task"], str) or not ep["task"].strip():
        raise DataError(where, f"task must be a non-empty string, got {ep['task']!r}")
    success = ep.get("success")
    if success is not None:
        success = np.asarray(success)
        if success.shape != (len(frames),) or not (success.dtype == bool or np.isin(success, (0, 1)).all()):
            raise DataError(where, f"success must be ({len(frames)},) bool, got {success.shape} {success.dtype}")
        success = success.astype(bool)
    out = _Ep(frames, ep["task"], _vector(ep.get("actions"), "actions", where, len(frames)),
              _vector(ep.get("states"), "states", where, len(frames)), success,
              _scalars(ep.get("rewards"), "rewards", where, len(frames)),
              _scalars(ep.get("progress"), "progress", where, len(frames)))
    if out.progress is not None and not ((out.progress >= 0) & (out.progress <= 1)).all():
        raise DataError(where, "progress must be in [0, 1]")
    for name in ("frames", "actions", "states", "success", "rewards", "progress") if first is not None else ():
        mine, theirs = getattr(out, name), getattr(first, name)
        if (mine is None) != (theirs is None) or (mine is not None and mine.shape[1:] != theirs.shape[1:]):
            shape = lambda v: "none" if v is None else f"shape {v.shape[1:]} per frame"  # noqa: E731
            raise DataError(where, f"{name} has {shape(mine)} but episodes[0] has {shape(theirs)}; every episode "
                                   f"needs the same")
    return out


# --------------------------------------------------------------------------------------------- video

class _VideoWriter:
    """An mp4 (libx264 yuv420p, or libx264rgb rgb24 when lossless) being written; counts frames and bytes."""

    def __init__(self, path: Path, fps: int, width: int, height: int, crf: int, gop: int, lossless: bool = False):
        import av

        if "libx264" not in av.codecs_available:
            raise RuntimeError("this PyAV build has no libx264 encoder; install the PyAV wheel from PyPI")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.av = av
        self.container = av.open(str(path), "w")
        if lossless:  # pixel-exact RGB (qp 0): for tests and archival; about 5x larger files
            self.stream = self.container.add_stream("libx264rgb", rate=fps, options={"qp": "0", "g": str(gop)})
            self.stream.pix_fmt = "rgb24"
        else:
            self.stream = self.container.add_stream("libx264", rate=fps, options={"crf": str(crf), "g": str(gop)})
            self.stream.pix_fmt = "yuv420p"
        self.stream.width, self.stream.height = width, height
        self.frames = 0
        self.bytes = 0

    def add(self, frames: np.ndarray) -> None:
        for frame in frames:
            vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts = self.frames  # in the stream's 1/fps time base: continuous across episodes of one file
            self.frames += 1
            self._mux(self.stream.encode(vf))

    def _mux(self, packets) -> None:
        for packet in packets:
            self.bytes += packet.size
            self.container.mux(packet)

    def close(self) -> None:
        self._mux(self.stream.encode(None))
        self.container.close()


class _DataWriter:
    """A parquet data file being written, a row group per episode; counts the rows and bytes so far."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.writer, self.frames, self.bytes = path, None, 0, 0

    def add(self, table) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="snappy")
        self.writer.write_table(table)
        self.frames, self.bytes = self.frames + table.num_rows, self.bytes + table.nbytes

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _FileSeries:
    """v3.0 files of one kind (data, or a camera's video): episodes go to the current file until it holds
    ``per_file`` episodes or the next one would take it past ``limit`` bytes; ``chunks_size`` files per chunk."""

    def __init__(self, opener, chunks_size: int, per_file: int | None, limit: float):
        self.opener, self.chunks_size, self.per_file, self.limit = opener, chunks_size, per_file, limit
        self.chunk, self.file, self.count, self.handle = 0, 0, 0, None

    def take(self, frames: int):
        """The writer for the next episode of ``frames`` frames; its file is (self.chunk, self.file)."""
        h = self.handle
        if h is not None and ((self.per_file and self.count >= self.per_file)
                              or h.bytes + h.bytes / max(h.frames, 1) * frames >= self.limit):
            h.close()
            self.chunk, self.file = _next_file(self.chunk, self.file, self.chunks_size)
            self.handle = None
        if self.handle is None:
            self.handle, self.count = self.opener(self.chunk, self.file), 0
        self.count += 1
        return self.handle

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _video_info(path: Path, fps: int) -> dict:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {"video.height": stream.height, "video.width": stream.width, "video.codec": stream.codec.canonical_name,
                "video.pix_fmt": stream.pix_fmt, "video.is_depth_map": False, "video.fps": int(fps),
                "video.channels": 3, "has_audio": False}


# ---------------------------------------------------------------------------------------------- data

def _features(ep: _Ep, camera: str, action_names, state_names) -> dict[str, dict]:
    """info.json features for episodes shaped like ``ep`` (the camera's video info is added later)."""
    h, w = ep.frames.shape[1:3]
    features = {camera: {"dtype": "video", "shape": [int(h), int(w), 3], "names": ["height", "width", "channels"]}}
    for key, attr, names in (("action", "actions", action_names), ("observation.state", "states", state_names)):
        if getattr(ep, attr) is not None:
            dim = getattr(ep, attr).shape[1]
            names = list(names) if names is not None else [f"{key.split('.')[-1]}_{i}" for i in range(dim)]
            if len(names) != dim:
                raise DataError(f"{attr} names", f"{len(names)} names given for {dim} values")
            features[key] = {"dtype": "float32", "shape": [dim], "names": names}
    if ep.success is not None:
        features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
    if ep.rewards is not None:
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    if ep.progress is not None:
        features[PROGRESS_COLUMN] = {"dtype": "float32", "shape": [1], "names": None}
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        features[key] = {"dtype": "float32" if key == "timestamp" else "int64", "shape": [1], "names": None}
    return features


def _table(ep: _Ep, episode_index: int, start: int, task_index: int, fps: int):
    """One episode's parquet rows -> (pyarrow Table, {column: (T, D) values} for the statistics)."""
    import pyarrow as pa

    n = len(ep.frames)
    values: dict[str, np.ndarray] = {}
    if ep.actions is not None:
        values["action"] = ep.actions
    if ep.states is not None:
        values["observation.state"] = ep.states
    if ep.success is not None:
        values["next.success"] = ep.success[:, None]
    if ep.rewards is not None:
        values["next.reward"] = ep.rewards[:, None].astype(np.float32)
    if ep.progress is not None:
        values[PROGRESS_COLUMN] = ep.progress[:, None].astype(np.float32)
    values["timestamp"] = (np.arange(n) / fps).astype(np.float32)[:, None]
    values["frame_index"] = np.arange(n, dtype=np.int64)[:, None]
    values["episode_index"] = np.full((n, 1), episode_index, dtype=np.int64)
    values["index"] = np.arange(start, start + n, dtype=np.int64)[:, None]
    values["task_index"] = np.full((n, 1), task_index, dtype=np.int64)
    columns = {}
    for key, v in values.items():
        if key in ("action", "observation.state"):
            columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1), pa.float32()), v.shape[1])
        else:
            columns[key] = pa.array(v[:, 0])
    return pa.table(columns), values


def _tasks_parquet(path: Path, tasks: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # LeRobot writes a pandas frame indexed by the task string; this metadata lets pd.read_parquet
    # rebuild that index (LeRobot looks tasks up with tasks.loc[task] and tasks.iloc[i].name).
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
                     "metadata": None}],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def _next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    return (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=4) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------- write

def write_lerobot(root: str | os.PathLike[str], episodes: Iterable[dict], fps: int,
                  camera: str = "observation.images.main", version: str = "v3.0", robot_type: str | None = None, *,
                  crf: int = 23, gop: int = 2, lossless: bool = False, chunks_size: int = 1000, episodes_per_file: int | None = None,
                  data_files_size_in_mb: float = 100, video_files_size_in_mb: float = 200,
                  action_names: Sequence[str] | None = None, state_names: Sequence[str] | None = None) -> Path:
    """Write ``episodes`` as a LeRobot dataset at ``root`` (a new or empty folder) -> ``root``.

    Each episode is a dict: ``frames`` (T, H, W, 3) uint8 RGB (H and W even; the same size in every
    episode), ``task`` str, and optionally ``actions`` (T, A) and ``states`` (T, S) (stored float32),
    ``success`` (T,) bool, ``rewards`` (T,) (stored float32 as ``next.reward``), ``progress`` (T,) (stored
    float32 as :data:`PROGRESS_COLUMN`); an optional key must be
    given for every episode or none. ``episodes`` may
    be a generator: one episode is held at a time. ``fps``: frames per second (int). ``camera``: the
    video feature's name. ``version``: "v3.0" or "v2.1". ``crf``/``gop``: libx264 quality (lower is
    better) and keyframe interval (small = fast random access); ``lossless``: pixel-exact libx264rgb
    instead. v3.0 only: ``episodes_per_file``,
    ``data_files_size_in_mb``, ``video_files_size_in_mb`` bound the episodes per data/video file (a
    file always takes at least one); ``chunks_size`` is files per chunk folder (v2.1: episodes per
    chunk). ``action_names``/``state_names`` name the dimensions (default ``action_0``, ...). Bad
    input raises DataError naming the episode; ``meta/info.json`` is written last, so a failed write
    leaves no readable dataset.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if version not in ("v2.1", "v3.0"):
        raise ValueError(f"version must be 'v2.1' or 'v3.0', got {version!r}")
    if not isinstance(fps, (int, np.integer)) or fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    if chunks_size < 1 or (episodes_per_file is not None and episodes_per_file < 1):
        raise ValueError("chunks_size and episodes_per_file must be >= 1")
    if "/" in camera or not camera:
        raise ValueError(f"camera must be a feature name without '/', got {camera!r}")
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(str(root), "already exists and is not an empty folder; LeRobot datasets are written to a "
                                   "new folder")
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir()
    v30 = version == "v3.0"
    tasks: dict[str, int] = {}
    stats: list[dict] = []  # per episode: feature -> statistic -> array
    rows: list[dict] = []  # per episode: its metadata (episodes.jsonl line / meta/episodes row)
    first: _Ep | None = None
    total = 0
    data = video = None
    try:
        # Data and video, one episode at a time.
        for i, raw in enumerate(episodes):
            ep = _check_episode(raw, i, first)
            n = len(ep.frames)
            if first is None:
                first, features = ep, _features(ep, camera, action_names, state_names)
                h, w = ep.frames.shape[1:3]
                video_args = (int(fps), int(w), int(h), int(crf), int(gop), bool(lossless))
                data = _FileSeries(lambda c, f: _DataWriter(root / V30_DATA.format(chunk_index=c, file_index=f)),
                                   chunks_size, episodes_per_file, data_files_size_in_mb * _MB)
                video = _FileSeries(lambda c, f: _VideoWriter(root / V30_VIDEO.format(
                    video_key=camera, chunk_index=c, file_index=f), *video_args),
                    chunks_size, episodes_per_file, video_files_size_in_mb * _MB)
            table, values = _table(ep, i, total, tasks.setdefault(ep.task, len(tasks)), fps)
            stats.append({camera: image_stats(ep.frames, v30), **{k: value_stats(v, v30) for k, v in values.items()}})
            row = {"episode_index": i, "tasks": [ep.task], "length": n}
            if not v30:
                keys = {"episode_chunk": i // chunks_size, "episode_index": i, "video_key": camera}
                (root / V21_DATA.format(**keys)).parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, root / V21_DATA.format(**keys))
                writer = _VideoWriter(root / V21_VIDEO.format(**keys), *video_args)
                writer.add(ep.frames)
                writer.close()
            else:
                data.take(n).add(table)
                writer = video.take(n)
                start = writer.frames / fps  # episodes follow each other in one stream: start where the last ended
                writer.add(ep.frames)
                prefix = f"videos/{camera}/"
                row.update({"data/chunk_index": data.chunk, "data/file_index": data.file,
                            "dataset_from_index": total, "dataset_to_index": total + n,
                            prefix + "chunk_index": video.chunk, prefix + "file_index": video.file,
                            prefix + "from_timestamp": start, prefix + "to_timestamp": writer.frames / fps})
                row.update({f"stats/{f}/{k}": v.tolist() for f, s in stats[-1].items() for k, v in s.items()})
                row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            rows.append(row)
            total += n
    finally:
        for series in (data, video):
            if series is not None:
                series.close()
    if first is None:
        raise DataError("episodes", "nothing to write: no episodes given")

    # Metadata, info.json last.
    task_list = list(tasks)
    if not v30:
        lines = {"tasks.jsonl": [{"task_index": k, "task": t} for k, t in enumerate(task_list)],
                 "episodes.jsonl": rows,
                 "episodes_stats.jsonl": [{"episode_index": i, "stats": jsonable_stats(s)}
                                          for i, s in enumerate(stats)]}
        for name, items in lines.items():
            (root / "meta" / name).write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
        first_video = root / V21_VIDEO.format(episode_chunk=0, episode_index=0, video_key=camera)
        extra = {"total_videos": len(rows), "total_chunks": (len(rows) + chunks_size - 1) // chunks_size,
                 "chunks_size": chunks_size, "fps": int(fps), "splits": {"train": f"0:{len(rows)}"},
                 "data_path": V21_DATA, "video_path": V21_VIDEO}
    else:
        _tasks_parquet(root / "meta" / "tasks.parquet", task_list)
        episodes_path = root / _V30_EPISODES.format(chunk_index=0, file_index=0)
        episodes_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), episodes_path)
        dataset_stats = {f: aggregate_stats([s[f] for s in stats]) for f in stats[0]}
        _write_json(root / "meta" / "stats.json", jsonable_stats(dataset_stats))
        first_video = root / V30_VIDEO.format(video_key=camera, chunk_index=0, file_index=0)
        extra = {"chunks_size": chunks_size, "data_files_size_in_mb": data_files_size_in_mb,
                 "video_files_size_in_mb": video_files_size_in_mb, "fps": int(fps),
                 "splits": {"train": f"0:{len(rows)}"}, "data_path": V30_DATA, "video_path": V30_VIDEO}
    features[camera]["info"] = _video_info(first_video, fps)
    info = {"codebase_version": version, "robot_type": robot_type, "total_episodes": len(rows),
            "total_frames": total, "total_tasks": len(task_list), **extra, "features": features}
    _write_json(root / "meta" / "info.json", info)
    return root
