"""Read LeRobot datasets (codebase versions v2.1 and v3.0) with pyarrow and PyAV, without lerobot.

The layout, as LeRobot's own code reads and writes it (``lerobot/datasets/utils.py``; v2.1 as of
lerobot 0.3.x, v3.0 as of 0.4+):

- ``meta/info.json``: ``codebase_version``, ``fps``, ``features`` (name -> dtype, shape, names; video
  features add ``info``), ``data_path`` and ``video_path`` (format strings), ``chunks_size``, totals.
- v2.1: ``meta/tasks.jsonl`` (``{"task_index", "task"}`` per line), ``meta/episodes.jsonl``
  (``{"episode_index", "tasks": [...], "length"}``), ``meta/episodes_stats.jsonl``; one parquet file per
  episode ``data/chunk-{episode_index // chunks_size:03d}/episode_{episode_index:06d}.parquet`` and one
  mp4 per episode and camera ``videos/chunk-XXX/<camera>/episode_XXXXXX.mp4`` (the whole file).
- v3.0: ``meta/tasks.parquet`` (pandas frame indexed by the task string, column ``task_index``),
  ``meta/episodes/chunk-XXX/file-XXX.parquet`` (one row per episode: ``tasks``, ``length``,
  ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``, ``dataset_to_index`` and per camera
  ``videos/<camera>/chunk_index``, ``file_index``, ``from_timestamp``, ``to_timestamp``),
  ``meta/stats.json``; many episodes per ``data/chunk-XXX/file-XXX.parquet`` and per
  ``videos/<camera>/chunk-XXX/file-XXX.mp4``. An episode's frame i is the video frame shown at
  ``from_timestamp + timestamp[i]`` (its parquet ``timestamp`` column), as LeRobot itself looks it up.

Image features (``dtype: image``) are stored in the parquet files as ``{bytes, path}`` structs and are
read from there. Frames are decoded by :mod:`liv.data.lerobot_frames`; writing is in
:mod:`liv.data.lerobot_write` (re-exported here as ``write_lerobot``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError, Episode, EpisodeDataset
from liv.data.lerobot_frames import LeRobotImageFrames, LeRobotVideoFrames, parquet
from liv.data.lerobot_timestamps import EpisodeTimes
from liv.data.lerobot_write import PROGRESS_COLUMN, V21_DATA, V21_VIDEO, V30_DATA, V30_VIDEO, write_lerobot

__all__ = ["LeRobotImageFrames", "LeRobotVideoFrames", "read_lerobot", "write_lerobot"]

SUPPORTED_VERSIONS = ("v2.1", "v3.0")
REWARD_COLUMN = "next.reward"
"""The per-step reward column (LeRobot's name: the reward received after the row's action)."""
SUCCESS_COLUMNS = ("next.success", "success")
"""Boolean per-step columns read as success flags, first present wins."""


# ------------------------------------------------------------------------------------------ metadata

def read_info(root: Path) -> dict:
    """``root/meta/info.json`` checked for a supported ``codebase_version``, ``fps`` and ``features``."""
    path = root / "meta" / "info.json"
    if not root.is_dir():
        raise DataError(str(root), "not a folder")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(str(path), "missing: a LeRobot dataset has meta/info.json") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(str(path), f"not valid JSON ({e})") from None
    if not isinstance(info, dict):
        raise DataError(str(path), f"must hold a JSON object, found {type(info).__name__}")
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise DataError(str(path), f"codebase_version {version!r} is not supported; liv reads "
                                   f"{' and '.join(SUPPORTED_VERSIONS)} (LeRobot's scripts convert older versions)")
    fps = info.get("fps")
    if not isinstance(fps, (int, float)) or fps <= 0:
        raise DataError(str(path), f"fps must be a positive number, found {fps!r}")
    if not isinstance(info.get("features"), dict) or not all(isinstance(f, dict) for f in info["features"].values()):
        raise DataError(str(path), "features must be an object mapping each feature name to {dtype, shape, ...}")
    return info


def camera_keys(info: dict) -> list[str]:
    """Feature names stored as videos or images, in info.json order."""
    return [k for k, f in info["features"].items() if f.get("dtype") in ("video", "image")]


def _choose_camera(info: dict, camera: str | None, where: str) -> str:
    keys = camera_keys(info)
    if camera is not None:
        if camera not in keys:
            raise DataError(where, f"no camera {camera!r}; the cameras are: {', '.join(keys) or '(none)'}")
        return camera
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise DataError(where, "the dataset has no video or image feature to read frames from")
    raise DataError(where, f"the dataset has {len(keys)} cameras, choose one with camera=...: {', '.join(keys)}")


def _fill(template: str, where: str, **keys) -> str:
    try:
        return template.format(**keys)
    except (KeyError, IndexError, ValueError) as e:
        raise DataError(where, f"path template {template!r} cannot be filled ({type(e).__name__}: {e})") from None


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(str(path), "missing (a v2.1 dataset has it)") from None
    out = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {n}", f"not valid JSON ({e})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path} line {n}", "must be a JSON object")
            out.append((n, obj))
    return out


def _read_table(path: Path, columns: Sequence[str], where: str, required: Sequence[str] = ()):
    """The ``columns`` of a parquet file that exist in it (all of ``required`` must)."""
    import pyarrow as pa

    pq = parquet()

    try:
        names = pq.read_schema(path).names
        missing = [c for c in required if c not in names]
        if missing:
            raise DataError(where, f"missing column(s) {', '.join(missing)}")
        return pq.read_table(path, columns=[c for c in columns if c in names])
    except FileNotFoundError:
        raise DataError(where, "file not found") from None
    except (OSError, pa.ArrowException) as e:
        raise DataError(where, f"cannot read the parquet file ({e})") from None


@dataclass
class _EpisodeRecord:
    index: int
    tasks: list[str]
    length: int
    source: str
    manifest: Path  # the metadata file that lists the episode
    line: int | None  # its 1-based line there (JSON lines), None for a parquet row
    data_file: Path
    video: tuple[Path, float, float | None] | None  # (file, from_timestamp, to_timestamp) when the camera is a video


def _records_v21(root: Path, info: dict, camera: str) -> tuple[list[_EpisodeRecord], dict[int, str]]:
    tasks_path = root / "meta" / "tasks.jsonl"
    tasks = {}
    for n, obj in _jsonl(tasks_path):
        if not isinstance(obj.get("task_index"), int) or not isinstance(obj.get("task"), str):
            raise DataError(f"{tasks_path} line {n}", "needs an integer task_index and a string task")
        tasks[obj["task_index"]] = obj["task"]
    chunks = int(info.get("chunks_size") or 1000)
    data_t, video_t = info.get("data_path") or V21_DATA, info.get("video_path") or V21_VIDEO
    path = root / "meta" / "episodes.jsonl"
    records = []
    for n, obj in _jsonl(path):
        where = f"{path} line {n}"
        ep, length = obj.get("episode_index"), obj.get("length")
        if not isinstance(ep, int) or not isinstance(length, int) or not isinstance(obj.get("tasks", []), list):
            raise DataError(where, "needs an integer episode_index and length and a list of tasks")
        keys = {"episode_chunk": ep // chunks, "episode_index": ep, "video_key": camera}
        video = None
        if info["features"][camera]["dtype"] == "video":
            video = (root / _fill(video_t, str(root / "meta" / "info.json"), **keys), 0.0, None)
        records.append(_EpisodeRecord(ep, [str(t) for t in obj.get("tasks", [])], length, where, path, n,
                                      root / _fill(data_t, str(root / "meta" / "info.json"), **keys), video))
    return records, tasks


def _records_v30(root: Path, info: dict, camera: str) -> tuple[list[_EpisodeRecord], dict[int, str]]:
    tasks_path = root / "meta" / "tasks.parquet"
    table = _read_table(tasks_path, ["task_index", "task", "__index_level_0__"], str(tasks_path), ["task_index"])
    text_col = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if text_col is None:
        raise DataError(str(tasks_path), "no task strings: expected a 'task' column (the pandas index)")
    tasks = dict(zip(table.column("task_index").to_pylist(), table.column(text_col).to_pylist()))
    files = sorted((root / "meta" / "episodes").glob("*/*.parquet"))
    if not files:
        raise DataError(str(root / "meta" / "episodes"), "no episode metadata (chunk-XXX/file-XXX.parquet) found")
    is_video = info["features"][camera]["dtype"] == "video"
    vcols = [f"videos/{camera}/{k}" for k in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    need = ["episode_index", "length", "data/chunk_index", "data/file_index"] + (vcols if is_video else [])
    data_t, video_t = info.get("data_path") or V30_DATA, info.get("video_path") or V30_VIDEO
    records = []
    for path in files:
        rows = _read_table(path, need + ["tasks"], str(path), need).to_pylist()
        for n, row in enumerate(rows):
            where = f"{path} row {n} (0-based)"  # a table row, numbered as pyarrow and pandas number them
            if any(row[c] is None for c in need):
                raise DataError(where, f"empty {next(c for c in need if row[c] is None)}")
            data_file = root / _fill(data_t, str(root / "meta" / "info.json"), chunk_index=row["data/chunk_index"],
                                     file_index=row["data/file_index"])
            video = None
            if is_video:
                chunk, file, start, end = (row[c] for c in vcols)
                video = (root / _fill(video_t, str(root / "meta" / "info.json"), video_key=camera,
                                      chunk_index=chunk, file_index=file), float(start), float(end))
            records.append(_EpisodeRecord(int(row["episode_index"]), [str(t) for t in row.get("tasks") or []],
                                          int(row["length"]), where, path, None, data_file, video))
    return records, tasks


# ------------------------------------------------------------------------------------------- columns

def _matrix(column, where: str, name: str) -> np.ndarray:
    """A parquet column of numbers or fixed-length lists of numbers -> (N, D) float32."""
    import pyarrow as pa

    arr = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if column.null_count:
        raise DataError(where, f"column {name} has empty values")
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        fixed = pa.types.is_fixed_size_list(arr.type)
        lengths = {arr.type.list_size} if fixed else set(arr.value_lengths().to_pylist())
        if len(lengths) > 1:
            raise DataError(where, f"column {name} has rows of different lengths {sorted(lengths)}")
        width = lengths.pop() if lengths else 0
        return np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(arr), width)
    try:
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(arr), 1)
    except (TypeError, ValueError):
        raise DataError(where, f"column {name} is {arr.type}, not numbers") from None


def _flags(values: np.ndarray, where: str, name: str) -> np.ndarray:
    flat = values.reshape(len(values), -1)[:, 0]
    if not np.isin(flat, (0.0, 1.0)).all():
        raise DataError(where, f"column {name} should hold booleans, found other values")
    return flat.astype(bool)


# -------------------------------------------------------------------------------------------- reader

def read_lerobot(root: str | os.PathLike[str], camera: str | None = None, *,
                 check_videos: bool = True) -> EpisodeDataset:
    """Read a LeRobot v2.1 or v3.0 dataset -> EpisodeDataset (format "lerobot"); no frame is decoded here.

    ``camera``: the video or image feature to read frames from (e.g. ``observation.images.top``);
    default the only one (DataError listing them if there are several). Each episode gets: text =
    the task of most of its frames (``task_index``), actions (T, A) float32 from ``action``, states
    (T, S) float32 from ``observation.state``, success (T,) bool from ``next.success`` or ``success``,
    rewards (T,) float32 from ``next.reward``, progress (T,) float32 from ``task_progress``
    (each None if absent), meta = episode_index, task_index, tasks, camera, fps, codebase_version,
    manifest = the metadata file listing it (``meta/episodes.jsonl`` with its line in manifest_line, or
    a v3.0 ``meta/episodes/...parquet``, whose 0-based row its ``source`` names).
    ``check_videos``: raise DataError listing missing video files (else only ``validate`` reports
    them). Bad metadata raises DataError naming the file and its line (JSON lines), its row (parquet,
    0-based, said so) or the episode.
    """
    root = Path(root)
    info = read_info(root)
    cam = _choose_camera(info, camera, str(root / "meta" / "info.json"))
    records, tasks = (_records_v21 if info["codebase_version"] == "v2.1" else _records_v30)(root, info, cam)
    success_col = next((c for c in SUCCESS_COLUMNS if c in info["features"]), None)
    wanted = ["episode_index", "timestamp", "frame_index", "task_index", "action", "observation.state", success_col,
              REWARD_COLUMN if REWARD_COLUMN in info["features"] else None,
              PROGRESS_COLUMN if PROGRESS_COLUMN in info["features"] else None]
    by_file: dict[Path, list[_EpisodeRecord]] = {}
    seen: dict[int, str] = {}
    for rec in records:
        if rec.index in seen:
            raise DataError(rec.source, f"episode_index {rec.index} is already used by {seen[rec.index]}")
        seen[rec.index] = rec.source
        by_file.setdefault(rec.data_file, []).append(rec)
    episodes: dict[int, Episode] = {}
    for data_file, recs in by_file.items():
        where = f"{data_file} (episode {recs[0].index})"
        table = _read_table(data_file, [c for c in wanted if c], where, ["episode_index", "timestamp"])
        columns = {c: _matrix(table.column(c), where, c) for c in table.column_names}
        spans = _episode_spans(columns.pop("episode_index")[:, 0].astype(np.int64), data_file)
        for rec in recs:
            a, b = spans.get(rec.index, (0, 0))
            where = f"{data_file} (episode {rec.index})"
            if b - a != rec.length:
                raise DataError(where, f"has {b - a} rows for the episode but {rec.source} says length {rec.length}")
            episodes[rec.index] = _episode(rec, {c: v[a:b] for c, v in columns.items()}, tasks, cam, info, a,
                                           success_col, where)
    ordered = [episodes[r.index] for r in sorted(records, key=lambda r: r.index)]
    if check_videos:
        _check_videos(ordered, cam)
    return EpisodeDataset(ordered, root=str(root), format="lerobot")


def _episode_spans(episode_index: np.ndarray, path: Path) -> dict[int, tuple[int, int]]:
    """Episode index -> its rows [start, end) in a data file; each episode's rows must be contiguous."""
    if not len(episode_index):
        return {}
    starts = np.concatenate([[0], np.flatnonzero(np.diff(episode_index)) + 1])
    ends = np.append(starts[1:], len(episode_index))
    spans: dict[int, tuple[int, int]] = {}
    for value, a, b in zip(episode_index[starts].tolist(), starts.tolist(), ends.tolist()):
        if value in spans:
            raise DataError(str(path), f"the rows of episode {value} are not contiguous (they start at rows "
                                       f"{spans[value][0]} and {a}, 0-based)")
        spans[value] = (a, b)
    return spans


def _check_videos(episodes: list[Episode], camera: str) -> None:
    missing: dict[Path, list[int]] = {}
    present: set[Path] = set()
    for e in episodes:
        path = getattr(e.frames, "path", None)
        if isinstance(e.frames, LeRobotVideoFrames) and path not in present:
            if path in missing or not path.is_file():
                missing.setdefault(path, []).append(e.meta["episode_index"])
            else:
                present.add(path)
    if missing:
        (first, eps), more = next(iter(missing.items())), len(missing) - 1
        raise DataError(str(first), f"video file not found (camera {camera}, episode {', '.join(map(str, eps))})"
                                    + (f"; {more} more video files are missing" if more else ""))


def _episode(rec: _EpisodeRecord, cols: dict[str, np.ndarray], tasks: dict[int, str], camera: str, info: dict,
             row_start: int, success_col: str | None, where: str) -> Episode:
    task_index = None
    if "task_index" in cols and rec.length:
        values, counts = np.unique(cols["task_index"][:, 0].astype(np.int64), return_counts=True)
        task_index = int(values[np.argmax(counts)])
        if task_index not in tasks:
            raise DataError(where, f"task_index {task_index} is not in the dataset's tasks file")
        text = tasks[task_index]
    elif rec.tasks:
        text = rec.tasks[0]
    else:
        raise DataError(rec.source, "the episode has no task")
    fps = float(info["fps"])
    frame_index = cols["frame_index"][:, 0] if "frame_index" in cols else None
    if rec.video is not None:
        path, start, end = rec.video
        frames = LeRobotVideoFrames(path, cols["timestamp"][:, 0], fps, rec.index, start, end,
                                    frame_index=frame_index, data_file=rec.data_file, row_start=row_start)
    else:
        times = EpisodeTimes(cols["timestamp"][:, 0], fps, rec.index, frame_index, rec.data_file, row_start)
        frames = LeRobotImageFrames(rec.data_file, camera, row_start, rec.length, rec.index, times=times)
    success = _flags(cols[success_col], where, success_col) if success_col in cols else None
    meta = {"episode_index": rec.index, "task_index": task_index, "tasks": rec.tasks, "camera": camera, "fps": fps,
            "codebase_version": info["codebase_version"]}
    rewards, progress = (_scalar_column(cols, c, where) for c in (REWARD_COLUMN, PROGRESS_COLUMN))
    if progress is not None and not ((progress >= 0) & (progress <= 1)).all():
        row = int(np.flatnonzero((progress < 0) | (progress > 1))[0])
        raise DataError(where, f"column {PROGRESS_COLUMN} is {progress[row]} at frame {row}; progress is in [0, 1]")
    return Episode(frames=frames, text=text, source=rec.source, actions=cols.get("action"),
                   states=cols.get("observation.state"), success=success, meta=meta, manifest=str(rec.manifest),
                   manifest_line=rec.line, rewards=rewards, progress=progress)


def _scalar_column(cols: dict[str, np.ndarray], name: str, where: str) -> np.ndarray | None:
    """A per-frame number column -> (T,) float32 (None if absent); DataError for NaN or infinity."""
    if name not in cols:
        return None
    values = cols[name].reshape(len(cols[name]), -1)[:, 0].astype(np.float32)
    if not np.isfinite(values).all():
        raise DataError(where, f"column {name} has NaN or infinite values")
    return values
