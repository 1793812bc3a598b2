"""Check that each row of a LeRobot episode is stamped with the time of its own video frame.

LeRobot fetches row i's video frame at its parquet ``timestamp`` (plus the segment's
``from_timestamp`` in v3.0), and when loading a dataset refuses timestamps whose steps are not
``1 / fps`` within ``tolerance_s`` (1e-4 s by default; ``check_timestamps_sync``). A recording
fault that repeats a timestamp or sends it backwards maps two rows onto one frame; a skipped or
shifted timestamp maps rows onto their neighbours' frames. Neither fails to decode: the wrong
frame comes back. Here each row is held to its own expected time, ``frame_index / fps`` with
``frame_index`` the row's position in the episode, so a fault is pinned to the rows it affects and
every other row is known to reach its own frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError

TOLERANCE_S = 1e-4
"""Largest allowed |timestamp - frame_index / fps|, seconds (LeRobot's default ``tolerance_s``)."""

_LISTED = 3  # rows named after the first in an episode's summary


def bad_rows(timestamps: np.ndarray, fps: float, frame_index: np.ndarray | None = None) -> np.ndarray:
    """Rows whose timestamp does not reach their own frame -> (K,) int64 row numbers, ascending.

    ``timestamps``: (T,) seconds from the episode's start (the parquet ``timestamp`` column);
    ``frame_index``: (T,) the parquet ``frame_index`` column, or None when the data has none. Row i
    (counted from the episode's first row, from 0) is bad when ``frame_index[i] != i`` or when
    ``|timestamps[i] - i / fps|`` exceeds :data:`TOLERANCE_S` (NaN always does).
    """
    ts = np.asarray(timestamps, np.float64).reshape(-1)
    expected = np.arange(len(ts)) / fps
    # LeRobot stores timestamps as float32, whose rounding alone passes 1e-4 s after about half an hour.
    slack = TOLERANCE_S + np.spacing(expected.astype(np.float32)).astype(np.float64)
    bad = ~(np.abs(ts - expected) <= slack)
    if frame_index is not None:
        bad |= np.asarray(frame_index).reshape(-1) != np.arange(len(ts))
    return np.flatnonzero(bad)


def row_problem(row: int, timestamps: np.ndarray, fps: float, frame_index: np.ndarray | None = None) -> str:
    """What is wrong with ``row`` of an episode (one found by :func:`bad_rows`), in words."""
    ts = np.asarray(timestamps, np.float64).reshape(-1)
    t, want = float(ts[row]), row / fps
    if frame_index is not None and frame_index[row] != row:
        return (f"frame_index is {frame_index[row]:g} but this is the episode's row {row} (LeRobot numbers an "
                f"episode's rows 0, 1, 2, ... and finds row i's frame at i / fps)")
    own = f"frame {row} at {fps:g} fps is at {want:.4f} s"
    if row > 0 and not t > ts[row - 1]:
        return f"timestamp {t:.4f} s is not after row {row - 1}'s {ts[row - 1]:.4f} s ({own})"
    if row + 1 < len(ts) and not t < ts[row + 1]:
        return f"timestamp {t:.4f} s is not before row {row + 1}'s {ts[row + 1]:.4f} s ({own})"
    return (f"timestamp {t:.4f} s is out of sync: {own}, {abs(t - want) * 1e3:.2f} ms away "
            f"(LeRobot allows {TOLERANCE_S * 1e3:g} ms)")


class EpisodeTimes:
    """The checked parquet timestamps of one LeRobot episode: which rows reach their own video frame.

    Checked once, here (O(T), no file read), so that reads can refuse bad rows at no cost.
    ``timestamps`` (T,) seconds and ``frame_index`` (T,) or None as in :func:`bad_rows`;
    ``data_file`` and ``row_start`` (the episode's first row in that file) name the rows in messages.
    """

    def __init__(self, timestamps: np.ndarray, fps: float, episode_index: int,
                 frame_index: np.ndarray | None = None, data_file: str | Path | None = None, row_start: int = 0):
        self.timestamps = np.asarray(timestamps, np.float64).reshape(-1)
        self.fps = float(fps)
        self.episode_index = int(episode_index)
        self.frame_index = None if frame_index is None else np.asarray(frame_index).reshape(-1)
        self.data_file = None if data_file is None else str(data_file)
        self.row_start = int(row_start)
        self.bad = bad_rows(self.timestamps, self.fps, self.frame_index)
        """(K,) int64 rows whose timestamp does not reach their own frame; empty when all do."""

    def where(self, row: int) -> str:
        """The place of ``row``: data file, episode and its row, 0-based as LeRobot's ``frame_index`` (and the
        row in the file when they differ): ``<file> episode 4 row 5 (0-based; row 25 of the file)``."""
        place = f"episode {self.episode_index} row {row} (0-based"
        place += f"; row {self.row_start + row} of the file)" if self.row_start else ")"
        return place if self.data_file is None else f"{self.data_file} {place}"

    def problem(self) -> str | None:
        """One line naming the first bad row and what is wrong, counting the others; None if none."""
        if not self.bad.size:
            return None
        first = int(self.bad[0])
        line = f"{self.where(first)}: {row_problem(first, self.timestamps, self.fps, self.frame_index)}"
        more = [str(r) for r in self.bad[1:1 + _LISTED]]
        if more:
            rest = len(self.bad) - 1 - len(more)
            line += f"; also row{'s' * (len(self.bad) > 2)} {', '.join(more)}" + (f" and {rest} more" if rest else "")
        return line

    def refuse(self, rows: Sequence[int]) -> None:
        """Raise DataError(where, problem) for the first of ``rows`` that is bad; return if none is."""
        if not self.bad.size:
            return
        hit = np.intersect1d(np.asarray(rows, np.int64), self.bad)
        if hit.size:
            row = int(hit[0])
            raise DataError(self.where(row), row_problem(row, self.timestamps, self.fps, self.frame_index))
