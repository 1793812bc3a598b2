"""Frame sources of LeRobot datasets: episodes in mp4 files (whole or a time segment) or parquet images.

Decoding uses PyAV: seek to the keyframe at or before the first wanted time, decode forward, match
frames to wanted times by their presentation time (as LeRobot does). Open files are kept per process
(see :class:`liv.data.open_files.OpenFiles`), so episodes pickle to DataLoader workers and v3.0 episodes sharing a file
share one open handle.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError, check_indices
from liv.data.lerobot_timestamps import TOLERANCE_S, EpisodeTimes
from liv.data.open_files import OpenFiles
from liv.data.video_index import nominal_rate

_RESEEK_S = 1.0  # wanted frames further apart than this are reached by a new seek, not by decoding through


def pyav():
    """The ``av`` module, or ModuleNotFoundError saying how to install it."""
    try:
        import av
    except ModuleNotFoundError:
        raise ModuleNotFoundError("reading LeRobot videos needs PyAV: pip install 'liv[lerobot]'") from None
    return av


def parquet():
    """The ``pyarrow.parquet`` module, or ModuleNotFoundError saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise ModuleNotFoundError("reading LeRobot datasets needs pyarrow: pip install 'liv[lerobot]'") from None
    return pq


# ------------------------------------------------------------------------------------------ decoding

_FILES = OpenFiles(limit=16)  # v3.0 episodes share files, so they share one handle


def decode_at_times(path: str, times: Sequence[float], where: str) -> list[np.ndarray]:
    """Frames of the video at ``path`` shown at ``times`` (seconds, ascending) -> list of (H, W, 3) uint8.

    Seeks to the keyframe at or before the first wanted time and decodes forward, seeking again
    across gaps longer than a second. A frame matches a time when its presentation time is within
    :func:`match_tolerance` of it, as LeRobot's loader requires (it takes the nearest frame and
    refuses one further than ``tolerance_s``): no other frame can then be taken for it, whatever the
    video's frame rate. A time with no such frame raises DataError naming ``where`` and the nearest frames.
    """
    av = pyav()
    out: list[np.ndarray] = []
    with _FILES.lock:
        try:
            container = _FILES.get(("video", path), path, av.open)
            stream = container.streams.video[0]
            while len(out) < len(times):
                target = times[len(out)]
                tol = match_tolerance(target, stream.time_base)
                container.seek(max(0, int((target - tol) / stream.time_base)), stream=stream, backward=True)
                before = None
                for frame in container.decode(stream):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * stream.time_base)
                    target = times[len(out)]
                    tol = match_tolerance(target, stream.time_base)
                    if t > target + tol:
                        near = f"the nearest are at {before:.6f} s and {t:.6f} s" if before is not None else \
                            f"the first after the seek is at {t:.6f} s"
                        raise DataError(where, f"no video frame at {target:.6f} s ({near}; LeRobot allows "
                                               f"{tol * 1e3:.3f} ms): the video's timing disagrees with the data's")
                    if t >= target - tol:
                        out.append(frame.to_ndarray(format="rgb24"))
                        if len(out) == len(times) or times[len(out)] - t > _RESEEK_S:
                            break
                    before = t
                else:
                    last = f" (its last frame is at {before:.6f} s)" if before is not None else ""
                    raise DataError(where, f"no video frame at {times[len(out)]:.6f} s: the video ends first{last}")
        except (av.FFmpegError, IndexError, OSError) as e:
            _FILES.drop(("video", path))
            if isinstance(e, FileNotFoundError):
                raise DataError(where, "video file not found") from None
            raise DataError(where, f"cannot decode the video ({type(e).__name__}: {e})") from None
    return out


def match_tolerance(target: float, time_base) -> float:
    """Seconds a frame's presentation time may differ from a row's ``target`` time: LeRobot's ``tolerance_s``
    (1e-4 s), plus one unit of the stream's time base (timestamps are stored rounded to it) and the
    float32 rounding of the stored row time."""
    return TOLERANCE_S + float(time_base) + float(np.spacing(np.float32(target)))


def _probe(path: str) -> tuple[float, int, float]:
    """(duration s, frame count or 0, frame rate fps or 0) of a video's first stream, from its header.

    The rate is the stream's nominal one (:func:`liv.data.video_index.nominal_rate`).
    """
    av = pyav()
    with av.open(path) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = float(container.duration or 0) / av.time_base
        return duration, int(stream.frames or 0), float(nominal_rate(stream) or 0)


def rate_disagrees(rate: float, fps: float) -> bool:
    """Whether a video's frame ``rate`` differs from info.json's ``fps`` (relative 1e-4: 29.97 vs 30 does)."""
    return rate > 0 and abs(rate - fps) > 1e-4 * fps


# ------------------------------------------------------------------------------------ frame sources

class LeRobotVideoFrames:
    """The frames of one episode in a LeRobot mp4: a whole file (v2.1) or a time segment of one (v3.0).

    ``timestamps`` (T,) float64 are the episode's parquet ``timestamp`` column in seconds; frame i is
    the video frame at ``from_timestamp + timestamps[i]``. ``to_timestamp`` is the segment's end
    (exclusive), None for the whole file. ``frame_index`` (T,) is the parquet ``frame_index`` column
    if any; ``data_file`` and ``row_start`` (the episode's first row there) name rows in messages.
    The timestamps are checked here, once (:class:`~liv.data.lerobot_timestamps.EpisodeTimes`): a
    row whose timestamp is not its own frame's time is refused by :meth:`read`, never decoded.
    Containers are opened lazily, once per process.
    """

    def __init__(self, path: Path, timestamps: np.ndarray, fps: float, episode_index: int,
                 from_timestamp: float = 0.0, to_timestamp: float | None = None, *,
                 frame_index: np.ndarray | None = None, data_file: Path | None = None, row_start: int = 0):
        self.path = Path(path)
        self.timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        self.fps = float(fps)
        self.episode_index = int(episode_index)
        self.from_timestamp = float(from_timestamp)
        self.to_timestamp = None if to_timestamp is None else float(to_timestamp)
        self.times = EpisodeTimes(self.timestamps, self.fps, self.episode_index, frame_index,
                                  self.path if data_file is None else data_file, row_start)
        self._rate: float | None = None  # the video's own frame rate, probed when a read fails

    def __len__(self) -> int:
        return len(self.timestamps)

    def describe(self) -> str:
        if self.to_timestamp is None:
            return f"{self.path} (episode {self.episode_index})"
        return f"{self.path} [{self.from_timestamp:.4f} s, {self.to_timestamp:.4f} s) (episode {self.episode_index})"

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` -> (K, H, W, 3) uint8 RGB in the order asked (each decoded once).

        Raises DataError naming the data file, episode and row when an asked row's timestamp is not
        its own frame's time (nothing is decoded then), or naming the video when a frame cannot be
        decoded (adding the video's frame rate when it disagrees with ``fps``).
        """
        idx = check_indices(indices, len(self), self.describe())
        if not idx:
            return np.zeros((0, 0, 0, 3), np.uint8)
        self.times.refuse(idx)
        unique = sorted(set(idx), key=lambda i: self.timestamps[i])
        times = [self.from_timestamp + self.timestamps[i] for i in unique]
        if self.to_timestamp is not None and times[-1] >= self.to_timestamp - TOLERANCE_S:
            # In v3.0 the next episode's frames follow in the same file: never read one of them for this one.
            row = unique[-1]
            raise DataError(self.describe(), f"the time of the episode's row {row} (0-based), {times[-1]:.6f} s, is "
                                             f"past its segment of the video, which ends at {self.to_timestamp:.6f} s")
        try:
            decoded = decode_at_times(str(self.path), times, self.describe())
        except DataError as e:
            note = self._rate_note()
            if note:
                raise DataError(e.where, f"{e.problem}; {note}") from None
            raise
        frames = dict(zip(unique, decoded))
        return np.stack([frames[i] for i in idx])

    def _rate_note(self) -> str | None:
        """Why reads by time fail when the video's frame rate is not info.json's fps; None if they agree."""
        if self._rate is None:
            try:
                self._rate = _probe(str(self.path))[2]
            except Exception:  # the read's own error says what is wrong with the file
                self._rate = 0.0
        if not rate_disagrees(self._rate, self.fps):
            return None
        return (f"the video runs at {self._rate:g} fps but meta/info.json says fps {self.fps:g}, and frames "
                f"are found at their rows' timestamps")

    def validate(self, full: bool = False) -> list[str]:
        """Problems, one line each (empty if none); none raised, nothing decoded unless ``full``.

        Errors: rows whose timestamp is not their frame's time (the first named with its data file,
        episode and row; see :mod:`liv.data.lerobot_timestamps`), missing file, segment outside the
        video, frame count != parquet rows. A line starting "warning: " when the video's frame rate is
        not info.json's fps. ``full`` also decodes every frame whose row has a good timestamp.
        """
        where = self.describe()
        timing = self.times.problem()
        problems = [] if timing is None else [timing]
        if not self.path.is_file():
            return problems + [f"{where}: video file not found"]
        try:
            duration, frames, rate = _probe(str(self.path))
        except Exception as e:  # PyAV raises many types for a damaged file
            return problems + [f"{where}: cannot open the video ({type(e).__name__}: {e})"]
        self._rate = rate
        tol = 0.4 / self.fps
        found = []
        end = duration if self.to_timestamp is None else self.to_timestamp
        if self.to_timestamp is not None and (self.to_timestamp > duration + tol or self.from_timestamp < -tol):
            found.append(f"{where}: the segment lies outside the video, which lasts {duration:.4f} s")
        if self.to_timestamp is None and frames:
            in_video = frames
        else:
            in_video = round((end - self.from_timestamp) * self.fps)
        if in_video != len(self):
            found.append(f"{where}: the video has {in_video} frames for this episode at {self.fps:g} fps but "
                         f"the parquet data has {len(self)} rows")
        if rate_disagrees(rate, self.fps):
            problems.append(f"warning: {where}: the video's frame rate is {rate:g} fps but meta/info.json says fps "
                            f"{self.fps:g}; frames are found at their rows' timestamps, and a row with no frame at its time "
                            f"is refused")
        if full and not found:
            try:
                self.read(np.setdiff1d(np.arange(len(self)), self.times.bad))
            except DataError as e:
                found.append(str(e))
        return problems + found


class LeRobotImageFrames:
    """The frames of one episode stored as encoded images in a parquet column (LeRobot ``image`` features).

    Rows ``[row_start, row_start + length)`` of column ``column`` in ``path``; each cell is a
    ``{bytes, path}`` struct holding a PNG/JPEG. Read by row group, lazily, once per process.
    ``times``: the episode's checked timestamps, if known; frames are found by row, not by time, so
    bad timestamps are only a warning of :meth:`validate` here.
    """

    def __init__(self, path: Path, column: str, row_start: int, length: int, episode_index: int, *,
                 times: EpisodeTimes | None = None):
        self.path = Path(path)
        self.column = column
        self.row_start = int(row_start)
        self.length = int(length)
        self.episode_index = int(episode_index)
        self.times = times

    def __len__(self) -> int:
        return self.length

    def describe(self) -> str:
        return f"{self.path} column {self.column} (episode {self.episode_index})"

    def _cells(self, rows: list[int]) -> dict[int, dict]:
        with _FILES.lock:
            try:
                pf = _FILES.get(("parquet", str(self.path)), str(self.path), parquet().ParquetFile)
            except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
                raise DataError(self.describe(), f"cannot open the parquet file ({e})") from None
            bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
            absolute = [self.row_start + r for r in rows]
            groups = sorted({int(np.searchsorted(bounds, a, side="right")) - 1 for a in absolute})
            table = pf.read_row_groups(groups, columns=[self.column])
        offset = {g: int(sum(bounds[h + 1] - bounds[h] for h in groups if h < g)) for g in groups}
        column = table.column(0)
        out = {}
        for r, a in zip(rows, absolute):
            g = int(np.searchsorted(bounds, a, side="right")) - 1
            out[r] = column[offset[g] + a - int(bounds[g])].as_py()
        return out

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` -> (K, H, W, 3) uint8 RGB in the order asked (each decoded once, by
        :func:`liv.data.images.read_image`: deeper images scaled or refused)."""
        from liv.data.images import read_image

        idx = check_indices(indices, len(self), self.describe())
        if not idx:
            return np.zeros((0, 0, 0, 3), np.uint8)
        decoded = {}
        for i, cell in self._cells(sorted(set(idx))).items():
            data = cell.get("bytes") if isinstance(cell, dict) else None
            if not data:
                raise DataError(self.describe(), f"frame {i}: the image is not embedded in the parquet file")
            decoded[i] = read_image(io.BytesIO(data), where=f"{self.describe()} frame {i}")
        return np.stack([decoded[i] for i in idx])

    def validate(self, full: bool = False) -> list[str]:
        """Problems, one line each (empty if none): missing file; with ``full``, images that do not decode.

        Timestamps that are not their rows' frame times give a line starting "warning: " (LeRobot
        refuses such data; liv finds these frames by row, so it reads the right ones).
        """
        timing = None if self.times is None else self.times.problem()
        warnings = [] if timing is None else [f"warning: {timing} (liv reads these images by row, so it reads "
                                              f"the right ones; LeRobot refuses out-of-sync timestamps)"]
        if not self.path.is_file():
            return warnings + [f"{self.describe()}: parquet file not found"]
        if full:
            try:
                self.read(range(len(self)))
            except DataError as e:
                return warnings + [str(e)]
        return warnings
