"""The Episode abstraction: a text-annotated sequence of frames, whatever format it is stored in.

Every reader (frame folders, video files, LeRobot, EPIC-KITCHENS) produces :class:`Episode` objects
whose frames come from a :class:`FrameSource`. Sources open files lazily and per process, so episodes
can be sent to DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # numpy is imported where arrays are made: command options import DataError from here
    import numpy as np


class DataError(ValueError):
    """Bad input data; the message names the file (and row, where there is one) and what is wrong."""

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


@runtime_checkable
class FrameSource(Protocol):
    """Random access to the frames of one episode."""

    def __len__(self) -> int:
        """Number of frames T."""
        ...

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (each in [0, T)) -> (K, H, W, 3) uint8 RGB, in the order asked.

        Repeated indices are decoded once. Raises DataError naming the file on unreadable frames.
        """
        ...

    def describe(self) -> str:
        """Where the frames live (a path, with a segment or camera if any), for error messages."""
        ...


@dataclass
class Episode:
    """One text-annotated video: frames plus optional per-step actions, states and success flags."""

    frames: FrameSource
    """Where the T frames come from."""
    text: str
    """The language annotation (task description, narration)."""
    source: str
    """Where this episode was declared, for messages: a manifest and its line (``manifest.csv line 13``),
    a LeRobot metadata line or row, or the video or folder itself."""
    actions: np.ndarray | None = None
    """(T, A) float32 actions, if the data has them."""
    states: np.ndarray | None = None
    """(T, S) float32 proprioceptive states, if the data has them."""
    success: np.ndarray | None = None
    """(T,) bool per-step success flags, if the data has them."""
    rewards: np.ndarray | None = None
    """(T,) float32 per-step rewards (LeRobot's ``next.reward``: received after the frame's action), if any."""
    progress: np.ndarray | None = None
    """(T,) float32 ground-truth task progress of each frame in [0, 1] (``task_progress`` of `liv sim generate`'s
    data: :meth:`liv.sim.suite.SimEnv.progress`), if the data has it."""
    outcome: bool | None = None
    """Whether the episode succeeded, as a manifest's ``success`` column labels it (None: not labelled)."""
    meta: dict = field(default_factory=dict)
    """Format-specific extras (episode index, task index, camera, ...)."""
    manifest: str | None = None
    """The file that lists this episode (a ``manifest.csv``, LeRobot's ``meta/episodes.jsonl`` or episodes
    parquet file), or None when nothing lists it (one video or image folder, episodes made in memory)."""
    manifest_line: int | None = None
    """1-based line of ``manifest`` where the episode's record starts, as an editor numbers it (a CSV's
    header is line 1); None when ``manifest`` is None or is a table without lines (parquet)."""

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` -> (K, H, W, 3) uint8; see :meth:`FrameSource.read`.

        A DataError from the source is re-raised naming this episode's declaration too (e.g. the
        manifest line), so a failure during training points at the line to fix.
        """
        try:
            return self.frames.read(indices)
        except DataError as e:
            if self.source in e.where:
                raise
            raise DataError(f"{e.where} (episode {self.source})", e.problem) from None

    def all_frames(self) -> np.ndarray:
        """Every frame -> (T, H, W, 3) uint8 (decodes the whole episode: for scoring, not training)."""
        return self.frames.read(range(len(self)))

    @property
    def succeeded(self) -> bool | None:
        """Whether the episode succeeded: its outcome label if it has one, else its last success flag, else None."""
        if self.outcome is not None:
            return self.outcome
        return None if self.success is None or len(self.success) == 0 else bool(self.success[-1])


class EpisodeDataset(Sequence[Episode]):
    """An ordered collection of episodes read from one place (a manifest, a LeRobot root, ...)."""

    def __init__(self, episodes: Sequence[Episode], root: str, format: str):
        self.episodes = list(episodes)
        self.root = root
        self.format = format

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return EpisodeDataset(self.episodes[i], self.root, self.format)
        return self.episodes[i]

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes)

    @property
    def texts(self) -> list[str]:
        """The distinct texts, in order of first appearance."""
        return list(dict.fromkeys(e.text for e in self.episodes))

    def num_frames(self) -> int:
        """Total frames over all episodes."""
        return sum(len(e) for e in self.episodes)

    def __repr__(self) -> str:
        return (f"EpisodeDataset({self.format}, {len(self)} episodes, {self.num_frames()} frames, "
                f"{len(self.texts)} texts, root={self.root!r})")


class ArrayFrames:
    """Frames held in memory: a (T, H, W, 3) uint8 array (tests, generated data, live rollouts)."""

    def __init__(self, frames: np.ndarray, name: str = "<array>"):
        import numpy as np

        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise DataError(name, f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        self._frames = frames
        self._name = name

    def __len__(self) -> int:
        return self._frames.shape[0]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        import numpy as np

        idx = np.asarray(list(indices), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise DataError(self._name, f"frame index out of range [0, {len(self)}): {idx.tolist()}")
        return self._frames[idx]

    def describe(self) -> str:
        return self._name


def name_some(names: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` names, comma-separated, and how many more there are (for messages)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_indices(indices: Sequence[int], length: int, where: str) -> list[int]:
    """Validate frame indices against an episode of ``length`` frames -> list of ints."""
    out = [int(i) for i in indices]
    bad = [i for i in out if not 0 <= i < length]
    if bad:
        raise DataError(where, f"frame index {bad[0]} out of range [0, {length})")
    return out
