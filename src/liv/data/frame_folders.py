"""Frame folders: the reference LIV layout, one folder of numbered images per episode.

``ROOT/manifest.csv`` has the required columns ``directory,num_frames,text``; other columns (the
reference's ``index``, ...) are kept in ``Episode.meta``. ``directory`` is relative to the manifest's
folder or absolute, and holds ``0.png`` .. ``{num_frames-1}.png`` (or ``.jpg``), 0-based as in the
reference. Two optional columns describe other layouts (EPIC-KITCHENS frame dumps): ``start_frame``
(frame i of the episode is file number ``start_frame + i``) and ``frame_pattern`` (a format string
such as ``frame_{:010d}.jpg``). An optional ``success`` column (1/0) labels each episode's outcome
(``Episode.outcome``: failures are then left out of VOC and scored in the success AUROC). Manifests
are read by :mod:`liv.data.manifests`.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from liv.data.episodes import DataError, Episode, EpisodeDataset, check_indices
from liv.data.images import read_image
from liv.data.manifests import (
    MANIFEST_NAME,
    OUTCOME_COLUMN,
    collect_rows,
    manifest_path,
    parse_int,
    parse_outcome,
    read_manifest,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
"""File endings treated as frames when a folder of images is read without a manifest."""
_DEFAULT_SUFFIXES = (".png", ".jpg")
_MAX_LISTED = 10  # how many file names a problem message spells out before summarising


# ------------------------------------------------------------------------------------------ images

@functools.lru_cache(maxsize=16)
def _listing(directory: str, mtime_ns: int) -> frozenset[str]:
    # Keyed by mtime so a changed folder is listed again; many episodes can share one folder (EPIC).
    return frozenset(os.listdir(directory))


def listing(directory: Path) -> frozenset[str] | None:
    """Names of the files in ``directory`` (cached while it is unchanged), or None if it cannot be listed."""
    try:
        return _listing(str(directory), directory.stat().st_mtime_ns)
    except OSError:
        return None


def _names(names: Sequence[str], limit: int = _MAX_LISTED) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class _ImageFrames:
    """Shared read/validate logic of sources whose frame i is one image file in ``self.directory``."""

    directory: Path

    def __len__(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        return str(self.directory)

    def candidates(self, i: int) -> list[str]:
        """File names that may hold frame i, in order of preference (strings: checking millions is fast)."""
        raise NotImplementedError

    def _decode(self, i: int) -> np.ndarray:
        tried = self.candidates(i)
        for name in tried:
            try:
                frame = read_image(self.directory / name)
            except FileNotFoundError:
                continue
            self._found(name)
            return frame
        raise DataError(self.describe(), f"frame {i}: missing file {self.directory / ' or '.join(tried)}")

    def _found(self, name: str) -> None:
        """Hook: file ``name`` held a frame (lets a source try that kind of file first next time)."""

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` -> (K, H, W, 3) uint8 RGB in the order asked; each file is decoded once
        (by :func:`liv.data.images.read_image`: deeper images scaled or refused)."""
        idx = check_indices(indices, len(self), self.describe())
        decoded = {i: self._decode(i) for i in dict.fromkeys(idx)}
        if not decoded:
            return np.zeros((0, 0, 0, 3), np.uint8)
        shape = decoded[idx[0]].shape
        for i, frame in decoded.items():
            if frame.shape != shape:
                raise DataError(self.describe(), f"frame {i} is {frame.shape[1]}x{frame.shape[0]} px but frame "
                                                 f"{idx[0]} is {shape[1]}x{shape[0]} px")
        return np.stack([decoded[i] for i in idx])

    def resolve(self) -> tuple[list[str | None], list[str]]:
        """(file name of each frame or None if absent, the names missing), from one folder listing."""
        names = listing(self.directory) or frozenset()
        found: list[str | None] = []
        missing: list[str] = []
        for i in range(len(self)):
            tried = self.candidates(i)
            name = next((n for n in tried if n in names), None)
            found.append(name)
            if name is None:
                missing.append(tried[0])
        return found, missing

    def validate(self, full: bool = False) -> list[str]:
        """Problems with this episode's files (empty if none): missing files; with ``full``, every decode.

        A message starting with ``warning:`` is suspicious but does not prevent training.
        """
        if listing(self.directory) is None:
            return [f"{self.directory}: frame folder does not exist (or cannot be listed)"]
        found, missing = self.resolve()
        problems = [self._missing_message(found, missing)] if missing else []
        if full:
            shape, first = None, None
            for i, name in enumerate(found):
                if name is None:
                    continue
                try:
                    frame = read_image(self.directory / name)
                except (DataError, OSError) as e:
                    problems.append(str(e))
                    continue
                if shape is None:
                    shape, first = frame.shape, name
                elif frame.shape != shape:
                    problems.append(f"{self.directory / name}: frame {i} is {frame.shape[1]}x{frame.shape[0]} px but "
                                    f"{first} is {shape[1]}x{shape[0]} px")
        return problems

    def _missing_message(self, found: list[str | None], missing: list[str]) -> str:
        return f"{self.describe()}: {len(missing)} of {len(found)} frame files missing: {_names(missing)}"


class FolderFrames(_ImageFrames):
    """Frames ``directory / pattern.format(start_frame + i)`` for i in [0, num_frames).

    ``pattern=None`` means ``{}.png``, else ``{}.jpg`` (the reference layout). Files are opened only
    when read, so an instance is cheap and picklable (DataLoader workers).
    """

    def __init__(self, directory: Path, num_frames: int, start_frame: int = 0, pattern: str | None = None):
        self.directory = Path(directory)
        self.num_frames = int(num_frames)
        self.start_frame = int(start_frame)
        self.pattern = pattern
        self._suffixes = _DEFAULT_SUFFIXES

    def __len__(self) -> int:
        return self.num_frames

    def candidates(self, i: int) -> list[str]:
        number = self.start_frame + i
        if self.pattern is not None:
            return [self.pattern.format(number)]
        return [f"{number}{s}" for s in self._suffixes]

    def _found(self, name: str) -> None:
        suffix = os.path.splitext(name)[1]
        if suffix != self._suffixes[0]:
            # Folders hold one kind of file: try this ending first from now on (saves a failed open per frame).
            self._suffixes = (suffix, *[s for s in self._suffixes if s != suffix])

    def validate(self, full: bool = False) -> list[str]:
        problems = super().validate(full)
        names = listing(self.directory)
        if names is not None and self.start_frame == 0 and self.pattern is None:
            extra = [f"{self.num_frames}{s}" for s in _DEFAULT_SUFFIXES if f"{self.num_frames}{s}" in names]
            if extra:
                problems.append(f"warning: {self.directory}: the manifest says num_frames={self.num_frames} but the "
                                f"folder also has {extra[0]} (more frames than listed)")
        return problems

    def _missing_message(self, found: list[str | None], missing: list[str]) -> str:
        present = len(found) - len(missing)
        if present and all(name is None for name in found[present:]):
            # Only the tail is absent: the manifest counts more frames than the folder has.
            return (f"{self.directory}: the manifest says num_frames={self.num_frames} but only {present} frames are "
                    f"present; missing {_names(missing)}")
        return super()._missing_message(found, missing)


class ImageFiles(_ImageFrames):
    """Frames from an explicit list of image file names in one folder (a folder of images, no manifest)."""

    def __init__(self, directory: Path, names: Sequence[str]):
        self.directory = Path(directory)
        self.names = list(names)

    def __len__(self) -> int:
        return len(self.names)

    def candidates(self, i: int) -> list[str]:
        return [self.names[i]]


# ------------------------------------------------------------------------------------ read / write

def read_frame_folders(path: str | os.PathLike[str], errors: list[DataError] | None = None) -> EpisodeDataset:
    """Read a frame-folder dataset from its ``manifest.csv`` (or the folder holding it) -> format "frames".

    No image is opened here. A missing required column raises DataError naming the file; a bad row
    (non-integer or negative ``num_frames``/``start_frame``, a bad ``frame_pattern``, a wrong number
    of fields) raises DataError naming ``manifest.csv line N`` (the file's 1-based line, header = line 1),
    or, when ``errors`` is a list, is appended to it and skipped. Each episode's ``manifest`` and
    ``manifest_line`` say where it was listed.
    """
    manifest = manifest_path(path)
    _, rows = read_manifest(manifest, ("directory", "num_frames", "text"))
    known = {"directory", "num_frames", "text", "start_frame", "frame_pattern", OUTCOME_COLUMN, ""}

    def build(n: int, row: dict[str, str], where: str) -> Episode:
        directory = (row["directory"] or "").strip()
        if not directory:
            raise DataError(where, "directory is empty")
        num_frames = parse_int(row, "num_frames", where)
        start = parse_int(row, "start_frame", where, default=0)
        pattern = (row.get("frame_pattern") or "").strip() or None
        if pattern is not None:
            _check_pattern(pattern, where)
        meta = {k: v for k, v in row.items() if k not in known}
        frames = FolderFrames(manifest.parent / directory, num_frames, start, pattern)
        return Episode(frames=frames, text=row["text"], source=where, meta=meta, manifest=str(manifest),
                       manifest_line=n, outcome=parse_outcome(row, where))

    episodes = collect_rows(rows, manifest, build, errors)
    return EpisodeDataset(episodes, root=str(manifest.parent), format="frames")


def _check_pattern(pattern: str, where: str) -> None:
    try:
        a, b = pattern.format(0), pattern.format(1)
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise DataError(where, f"frame_pattern {pattern!r} is not a format string taking one number ({e})") from None
    if a == b or "/" in a or "\\" in a:
        raise DataError(where, f"frame_pattern {pattern!r} must name one file per frame number, like 'frame_{{:010d}}.jpg'")


def _natural_key(name: str) -> tuple:
    # "2.png" before "10.png": compare digit runs as numbers.
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def read_image_folder(directory: str | os.PathLike[str], text: str) -> EpisodeDataset:
    """One episode from a folder of image files (sorted by name, numbers compared as numbers) -> "frames"."""
    directory = Path(directory)
    names = listing(directory)
    if names is None:
        raise DataError(str(directory), "not a folder")
    files = sorted((n for n in names if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise DataError(str(directory), f"no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    episode = Episode(frames=ImageFiles(directory, files), text=text, source=str(directory))
    return EpisodeDataset([episode], root=str(directory), format="frames")


def write_frame_folders(root: str | os.PathLike[str], episodes: Iterable[tuple[str, np.ndarray]],
                        image_format: str = "png") -> Path:
    """Write episodes as ``root/manifest.csv`` plus ``root/episode_XXXXXX/<i>.<image_format>`` -> manifest path.

    ``episodes`` yields (text, frames) with frames (T, H, W, 3) uint8 RGB. ``image_format`` is "png"
    (lossless) or "jpg" (quality 95, no chroma subsampling). The manifest has the reference's columns
    ``index,directory,num_frames,text``.
    """
    fmt = {"png": "png", "jpg": "jpg", "jpeg": "jpg"}.get(image_format.lower())
    if fmt is None:
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (text, frames) in enumerate(episodes):
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"episode {k}: frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
        name = f"episode_{k:06d}"
        (root / name).mkdir(exist_ok=True)
        for i, frame in enumerate(frames):
            options = {"quality": 95, "subsampling": 0} if fmt == "jpg" else {"compress_level": 1}
            Image.fromarray(frame).save(root / name / f"{i}.{fmt}", **options)
        rows.append([k, name, len(frames), text])
    manifest = root / MANIFEST_NAME
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "directory", "num_frames", "text"])
        writer.writerows(rows)
    return manifest
