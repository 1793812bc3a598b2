"""Video files (mp4, mov, m4v, webm, mkv, avi, MPEG-TS) listed in a ``manifest.csv``, decoded with PyAV.

The manifest has the required columns ``path,text`` (``path`` relative to the manifest's folder or
absolute) and the optional ``start_frame,end_frame`` (end exclusive): several rows may cut one long
video into segments, each its own episode. An optional ``success`` column (1/0) labels each episode's
outcome (``Episode.outcome``). Frame i is the i-th frame the video shows, whatever its
timing (see :mod:`liv.data.video_index`): random access seeks to the keyframe at or before the first
wanted frame and decodes forward, sorted wanted frames that share a keyframe share one pass, and every
decoded frame is identified by its presentation timestamp, so a frame the decoder does not deliver is
an error naming the file and the frame, never another frame in its place.
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError, Episode, EpisodeDataset, check_indices
from liv.data.manifests import OUTCOME_COLUMN, collect_rows, manifest_path, parse_int, parse_outcome, read_manifest
from liv.data.open_files import OpenFiles
from liv.data.video_index import VideoIndex, cached_index

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".ts", ".mts", ".m2ts")
MAX_OPEN_VIDEOS = 64
"""Open containers kept per process (least recently used are closed): bounds file descriptors."""


def _av():
    try:
        import av
    except ImportError:
        raise DataError("liv.data.video_files", "reading videos needs PyAV: pip install 'liv[video]'") from None
    return av


_FILES = OpenFiles(limit=MAX_OPEN_VIDEOS)


def _open_video(path: str):
    """A PyAV input container of ``path`` with a video stream; raises DataError naming the file otherwise."""
    try:
        container = _av().open(path, mode="r")
    except (_av().FFmpegError, OSError) as e:
        raise DataError(path, f"cannot open video ({_reason(e)})") from None
    if not container.streams.video:
        container.close()
        raise DataError(path, "no video stream in this file")
    return container


def _container(path: str):
    """This process's open container of ``path``, the file as it is on disk now; call with ``_FILES.lock``
    held. Raises DataError naming the file when it cannot be opened or has no video stream."""
    try:
        return _FILES.get(path, path, _open_video)
    except OSError as e:
        raise DataError(path, f"cannot open video ({e.strerror or e})") from None


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"




class VideoFrames:
    """Frames [start_frame, end_frame) of one video file (end None: to the end of the video).

    Holds only the path and bounds, so it pickles cheaply; containers are opened per process.
    """

    def __init__(self, path: str | os.PathLike[str], start_frame: int = 0, end_frame: int | None = None):
        self.path = str(path)
        self.start_frame = int(start_frame)
        self.end_frame = None if end_frame is None else int(end_frame)

    def __len__(self) -> int:
        end = self.info().frames if self.end_frame is None else self.end_frame
        return max(0, end - self.start_frame)

    def describe(self) -> str:
        if self.start_frame == 0 and self.end_frame is None:
            return self.path
        return f"{self.path} [frames {self.start_frame}:{'' if self.end_frame is None else self.end_frame}]"

    def info(self) -> VideoIndex:
        """The file's frame index (built by demuxing it once per process; see :mod:`liv.data.video_index`).

        Raises DataError naming the file when it cannot be opened or its packets cannot be read.
        """

        def open_container():
            _FILES.drop(self.path)  # a fresh container, at the start of the file
            return _container(self.path)

        with _FILES.lock:  # building demuxes the shared container: no other thread may decode from it meanwhile
            return cached_index(self.path, open_container)

    @property
    def fps(self) -> float | None:
        """The video's mean frame rate over its shown frames (frames/s; see ``VideoIndex.average_rate``)."""
        return self.info().average_rate()

    def times(self) -> np.ndarray:
        """(T,) float64 time of each frame of the segment in seconds, from its first frame.

        Read from the file's presentation timestamps, so a variable frame rate shows (frame / rate for a
        file whose timestamps follow decoding order). Raises DataError when the file has no timestamps
        or repeats them.
        """
        times = self._indexable().times(self.start_frame, self.start_frame + len(self))
        if times is None:
            raise DataError(self.path, "its packets carry no timestamps")
        return times

    def _indexable(self) -> VideoIndex:
        index = self.info()
        if index.problem:
            raise DataError(self.path, f"cannot index its frames: {index.problem}")
        return index

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` -> (K, H, W, 3) uint8 RGB in the order asked; each frame decoded once.

        Raises DataError naming the file and the frame when a frame cannot be decoded or the decoder
        does not deliver it (a damaged file), or when the file's timing cannot be indexed.
        """
        idx = check_indices(indices, len(self), self.describe())
        wanted = sorted({self.start_frame + i for i in idx})
        got = {w: f.to_ndarray(format="rgb24") for w, f in self._decode(wanted)}
        if not got:
            return np.zeros((0, 0, 0, 3), np.uint8)
        return np.stack([got[self.start_frame + i] for i in idx])

    def _decode(self, wanted: list[int]) -> Iterator[tuple[int, object]]:
        """Yield (absolute index, av.VideoFrame) for each of the sorted, distinct ``wanted`` frames."""
        index = self._indexable()
        with _FILES.lock:
            frames: Iterator | None = None
            last = -1
            w = wanted[0] if wanted else 0
            try:
                for w in wanted:
                    if frames is None or self._should_seek(index, last, w):
                        frames, last = self._frames_from(index, w), -1
                    for last, frame in frames:
                        if last == w:
                            yield w, frame
                            break
                        if last > w:
                            raise DataError(self.path, f"{index.describe(w)} did not come out of the decoder, "
                                                       f"which went on with frame {last}; the file is damaged")
                    else:
                        ended = f"after frame {last}" if last >= 0 else "before it"
                        raise DataError(self.path, f"frame {w}: the video ends {ended} (of {index.frames} "
                                                   f"expected); the file is truncated or its frame count is wrong")
            except (_av().FFmpegError, OSError) as e:
                _FILES.drop(self.path)
                raise DataError(self.path, f"cannot decode frame {w} ({_reason(e)}); the file is corrupt or "
                                           f"truncated") from None
            except DataError:
                _FILES.drop(self.path)
                raise

    @staticmethod
    def _should_seek(index: VideoIndex, last: int, w: int) -> bool:
        # Seeking helps only if it lands on a keyframe beyond the next frame the decoder would give anyway.
        keys = index.keyframes
        return bool(keys) and bisect_right(keys, w) > bisect_right(keys, last + 1)

    def _frames_from(self, index: VideoIndex, target: int) -> Iterator[tuple[int, object]]:
        """Decoded (index, frame) pairs, in display order, from a keyframe at or before ``target`` onwards."""
        if index.counted:
            yield from self._count_from_start()
            return
        key = index.keyframe_before(target)
        # Demuxers' seek indexes differ (by presentation or decoding time, or missing): a seek may land after
        # the target or nowhere. Then try the keyframe before, then the very start (a fresh container).
        for attempt in dict.fromkeys((key, key - 1, -1) if key >= 0 else (-1,)):
            if attempt < 0:
                _FILES.drop(self.path)
            container = _container(self.path)
            stream = container.streams.video[0]
            if attempt >= 0:
                pts = int(index.pts[index.keyframes[attempt]])
                container.seek(pts, stream=stream, backward=True, any_frame=False)
            first, untimed, previous = True, False, -1
            for frame in container.decode(stream):
                if frame.pts is None:
                    untimed = True
                    break
                position = index.position(frame.pts)
                if position is None:
                    raise DataError(self.path, f"the decoder returned a frame at {float(frame.pts * index.time_base):.6f}"
                                               f" s, which is none of the frames the file shows from its start: "
                                               f"cannot tell which frame it is")
                if first and position > target and attempt >= 0:
                    break  # overshot
                if not first and position <= previous:
                    # Decoders deliver frames in display order: a step back means the index is wrong for this file.
                    raise DataError(self.path, f"frame {position} came out of the decoder after frame {previous}: "
                                               f"its timestamps do not give the display order")
                first, previous = False, position
                yield position, frame
            if untimed:  # a decoder that gives no timestamps: count shown frames from the start instead
                yield from self._count_from_start()
                return
            if not first or attempt < 0:
                return  # decoded to the end of the file (or from its very start, where there is no retry)

    def _count_from_start(self) -> Iterator[tuple[int, object]]:
        """(i, frame) for every shown frame, decoding a freshly opened container from its first packet."""
        _FILES.drop(self.path)
        container = _container(self.path)
        yield from enumerate(container.decode(container.streams.video[0]))

    def validate(self, full: bool = False) -> list[str]:
        """Problems with this video (empty if none): unopenable or truncated file, timing that cannot be
        indexed, segment beyond its end; "warning: " ones are suspicious only. With ``full``, every frame
        of the segment is decoded; without, none (see ``liv.data.check`` for the frames it reads)."""
        try:
            index = self.info()
        except DataError as e:
            return [str(e)]
        if index.problem:
            return [f"{self.path}: cannot index its frames: {index.problem}"]
        problems = []
        if index.counted:
            problems.append(f"warning: {self.path}: its packets carry no timestamps; frames are counted from the "
                            f"start, so every read decodes from the first frame (slow)")
        if index.header_frames is not None:
            problems.append(f"warning: {self.path}: the header says {index.header_frames} frames but {index.frames} "
                            f"are present: a truncated file, or frames the container does not show (an edit list, "
                            f"a longer audio track); each frame present is read as it is")
        end = index.frames if self.end_frame is None else self.end_frame
        if end > index.frames:
            problems.append(f"{self.describe()}: end_frame {end} is beyond the video's {index.frames} frames")
        if self.start_frame >= min(end, index.frames):
            problems.append(f"{self.describe()}: start_frame {self.start_frame} leaves no frames "
                            f"(the video has {index.frames})")
        elif full:
            try:
                for _ in self._decode(list(range(self.start_frame, min(end, index.frames)))):
                    pass
            except DataError as e:
                problems.append(str(e))
        return problems


def read_video_manifest(path: str | os.PathLike[str], errors: list[DataError] | None = None) -> EpisodeDataset:
    """Read a video dataset from its ``manifest.csv`` (or the folder holding it) -> format "video".

    No video is opened here. A missing required column raises DataError naming the file; a bad row
    (empty path, non-integer or negative start_frame/end_frame, end_frame <= start_frame) raises
    DataError naming ``manifest.csv line N`` (the file's 1-based line, header = line 1), or, when
    ``errors`` is a list, is appended to it and skipped. Each episode's ``manifest`` and
    ``manifest_line`` say where it was listed.
    """
    manifest = manifest_path(path)
    _, rows = read_manifest(manifest, ("path", "text"))

    def build(n: int, row: dict[str, str], where: str) -> Episode:
        file = (row["path"] or "").strip()
        if not file:
            raise DataError(where, "path is empty")
        start = parse_int(row, "start_frame", where, default=0)
        end = parse_int(row, "end_frame", where, default=-1)
        if end != -1 and end <= start:
            raise DataError(where, f"end_frame {end} must be greater than start_frame {start}")
        known = ("path", "text", "start_frame", "end_frame", OUTCOME_COLUMN, "")
        meta = {k: v for k, v in row.items() if k not in known}
        frames = VideoFrames(manifest.parent / file, start, None if end == -1 else end)
        return Episode(frames=frames, text=row["text"], source=where, meta=meta, manifest=str(manifest),
                       manifest_line=n, outcome=parse_outcome(row, where))

    return EpisodeDataset(collect_rows(rows, manifest, build, errors), root=str(manifest.parent), format="video")


def read_video_file(path: str | os.PathLike[str], text: str) -> EpisodeDataset:
    """One episode: the whole video file at ``path``, annotated with ``text`` -> format "video"."""
    if not Path(path).is_file():
        raise DataError(str(path), "video file not found")
    episode = Episode(frames=VideoFrames(path), text=text, source=str(path))
    return EpisodeDataset([episode], root=str(path), format="video")
