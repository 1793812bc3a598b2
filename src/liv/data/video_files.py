"""Video files (mp4, webm, avi, mkv, mov) listed in a ``manifest.csv``, decoded with PyAV.

The manifest has the required columns ``path,text`` (``path`` relative to the manifest's folder or
absolute) and the optional ``start_frame,end_frame`` (end exclusive): several rows may cut one long
video into segments, each its own episode. Random access seeks to the keyframe at or before the first
wanted frame and decodes forward; sorted wanted frames that are close share one forward pass. Frame
index i maps to the timestamp ``start_time + i / average_rate`` (constant frame rate assumed).
"""

from __future__ import annotations

import csv
import os
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from liv.data.episodes import DataError, Episode, EpisodeDataset, check_indices
from liv.data.frame_folders import MANIFEST_NAME, collect_rows, manifest_path, parse_int, read_manifest

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mkv", ".mov")
MAX_OPEN_VIDEOS = 64
"""Open containers kept per process (least recently used are closed): bounds file descriptors."""
INDEX_MAX_BYTES = 64 << 20
"""Files up to this size are demuxed once on first use to learn exact frame count and keyframes."""
MAX_FORWARD = 32
"""Without a keyframe index, decode forward instead of seeking when the next wanted frame is this close."""
_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx", ".avi": "mpeg4"}
_LOSSLESS = {".mp4": ("libx264rgb", "rgb24", {"qp": "0"}), ".mov": ("libx264rgb", "rgb24", {"qp": "0"}),
             ".mkv": ("libx264rgb", "rgb24", {"qp": "0"}), ".avi": ("ffv1", "bgr0", {}),
             ".webm": ("libvpx-vp9", "yuv444p", {"lossless": "1"})}


def _av():
    try:
        import av
    except ImportError:
        raise DataError("liv.data.video_files", "reading videos needs PyAV: pip install 'liv[video]'") from None
    return av


@dataclass
class VideoInfo:
    """What liv knows about one video file's video stream (cached per process)."""

    frames: int
    """Frame count: from the container header, or counted by demuxing."""
    rate: Fraction
    """Average frame rate (frames per second)."""
    time_base: Fraction
    """Seconds per timestamp unit."""
    start_pts: int
    """Timestamp of frame 0, in time_base units."""
    header_frames: int | None = None
    """Count the header claims (frame count or duration x rate) when it differs from a demuxed count."""
    keyframes: list[int] | None = None
    """Sorted keyframe indices when the file was demuxed; otherwise None."""
    seen_keyframes: list[int] = field(default_factory=list)
    """Sorted keyframes met while decoding (helps decide between seeking and decoding forward)."""

    def __post_init__(self) -> None:
        # Frames per timestamp unit as a float: exact Fraction arithmetic per decoded frame is slow.
        self.frames_per_pts = float(self.time_base * self.rate)

    def index(self, pts: int) -> int:
        """Frame index of timestamp ``pts``."""
        return round((pts - self.start_pts) * self.frames_per_pts)


_INFO: dict[tuple[str, int, int], VideoInfo] = {}


class _Pool:
    """Per-process LRU of open containers; re-created in a forked child (DataLoader workers)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.open: OrderedDict[str, object] = OrderedDict()

    def get(self, path: str):
        """The open input container for ``path`` (caller holds ``self.lock``)."""
        container = self.open.pop(path, None)
        if container is None:
            try:
                container = _av().open(path, mode="r")
            except (_av().FFmpegError, OSError) as e:
                raise DataError(path, f"cannot open video ({_reason(e)})") from None
            if not container.streams.video:
                container.close()
                raise DataError(path, "no video stream in this file")
            while len(self.open) >= MAX_OPEN_VIDEOS:
                self.open.popitem(last=False)[1].close()
        self.open[path] = container
        return container

    def drop(self, path: str) -> None:
        """Close ``path``'s container (after a decoding error its state is unknown)."""
        container = self.open.pop(path, None)
        if container is not None:
            container.close()


_POOL = _Pool()
_INHERITED: list[_Pool] = []  # pools of parent processes, kept alive on purpose (see _pool)


def _pool() -> _Pool:
    global _POOL
    if _POOL.pid != os.getpid():
        # Forked: the parent's containers (and possibly its held lock) must not be shared. Nor may they
        # be freed here: freeing an FFmpeg decoder joins threads that exist only in the parent (a hang).
        _INHERITED.append(_POOL)
        _POOL = _Pool()
    return _POOL


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

    def info(self) -> VideoInfo:
        """Frame count, rate and timing of the file (opens it on first use in this process)."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise DataError(self.path, f"cannot open video ({e.strerror or e})") from None
        key = (self.path, st.st_size, st.st_mtime_ns)
        if key not in _INFO:
            with _pool().lock:
                _INFO[key] = self._probe(_pool().get(self.path), st.st_size)
        return _INFO[key]

    def _probe(self, container, size: int) -> VideoInfo:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or stream.time_base is None:
            raise DataError(self.path, "the video stream has no frame rate or time base")
        info = VideoInfo(frames=max(0, stream.frames), rate=Fraction(rate), time_base=Fraction(stream.time_base),
                         start_pts=stream.start_time or 0)
        claimed = stream.frames or (round(container.duration * info.rate / 1_000_000) if container.duration else None)
        if stream.frames <= 0 or size <= INDEX_MAX_BYTES:
            try:
                keys, count = [], 0
                for packet in container.demux(stream):
                    if packet.size:
                        if packet.is_keyframe and packet.pts is not None:
                            keys.append(info.index(packet.pts))
                        count += 1
            except (_av().FFmpegError, OSError) as e:
                raise DataError(self.path, f"cannot read the video's packets ({_reason(e)}); the file is corrupt or "
                                           f"truncated") from None
            info.frames, info.keyframes = count, sorted(set(keys))
            container.seek(0)
            if claimed and claimed > count + 1:
                info.header_frames = claimed
        return info

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` -> (K, H, W, 3) uint8 RGB in the order asked; each frame decoded once."""
        idx = check_indices(indices, len(self), self.describe())
        wanted = sorted({self.start_frame + i for i in idx})
        got = {w: f.to_ndarray(format="rgb24") for w, f in self._decode(wanted)}
        if not got:
            return np.zeros((0, 0, 0, 3), np.uint8)
        return np.stack([got[self.start_frame + i] for i in idx])

    def _decode(self, wanted: list[int]) -> Iterator[tuple[int, object]]:
        """Yield (absolute index, av.VideoFrame) for each of the sorted, distinct ``wanted`` frames."""
        info = self.info()
        pool = _pool()
        with pool.lock:
            container = pool.get(self.path)
            stream = container.streams.video[0]
            frames: Iterator | None = None
            last = -1
            try:
                for w in wanted:
                    if frames is None or self._should_seek(info, last, w):
                        frames, last = self._frames_from(container, stream, info, w), -1
                    for last, frame in frames:
                        if last == w:
                            yield w, frame
                            break
                        if last > w:
                            raise DataError(self.path, f"frame {w} not found: timestamps jump to frame {last} "
                                                       f"(variable frame rate video?)")
                    else:
                        ended = f"the video ends after frame {last}" if last >= 0 else "no frame decodes from there on"
                        raise DataError(self.path, f"frame {w}: {ended} (of {info.frames} expected); the file is "
                                                   f"truncated or its frame count is wrong")
            except (_av().FFmpegError, OSError) as e:
                pool.drop(self.path)
                raise DataError(self.path, f"cannot decode frame {w} ({_reason(e)}); the file is corrupt or "
                                           f"truncated") from None
            except DataError:
                pool.drop(self.path)
                raise

    @staticmethod
    def _should_seek(info: VideoInfo, last: int, w: int) -> bool:
        # Seeking helps only if it lands on a keyframe beyond the next frame the decoder would give anyway.
        keys = info.keyframes if info.keyframes is not None else info.seen_keyframes
        if keys and bisect_right(keys, w) > bisect_right(keys, last + 1):
            return True
        return info.keyframes is None and w - last > MAX_FORWARD

    def _frames_from(self, container, stream, info: VideoInfo, target: int) -> Iterator[tuple[int, object]]:
        """Decoded (index, frame) pairs from the keyframe at or before ``target`` onwards."""
        # Aim between frames target and target+1 so rounding in stored timestamps cannot skip target.
        pts = info.start_pts + int((target + Fraction(1, 2)) / (info.rate * info.time_base))
        container.seek(pts, stream=stream, backward=True, any_frame=False)
        first = True
        for frame in container.decode(stream):
            if frame.pts is None:
                yield from self._count_from_start(container, stream, info)
                return
            index = info.index(frame.pts)
            if first and index > target and target > 0:
                # The seek overshot (a sparse or missing index): fall back to decoding from the start.
                yield from self._count_from_start(container, stream, info)
                return
            first = False
            if frame.key_frame:
                seen, at = info.seen_keyframes, bisect_left(info.seen_keyframes, index)
                if at == len(seen) or seen[at] != index:
                    seen.insert(at, index)
            yield index, frame

    def _count_from_start(self, container, stream, info: VideoInfo) -> Iterator[tuple[int, object]]:
        container.seek(info.start_pts, stream=stream, backward=True, any_frame=False)
        for index, frame in enumerate(container.decode(stream)):
            yield index, frame

    def validate(self, full: bool = False) -> list[str]:
        """Problems with this video (empty if none): unopenable or truncated file, segment beyond its end;
        with ``full``, every frame of the segment is decoded."""
        try:
            info = self.info()
        except DataError as e:
            return [str(e)]
        problems = []
        if info.header_frames is not None:
            problems.append(f"{self.path}: the header says {info.header_frames} frames but only {info.frames} are "
                            f"present (truncated file?)")
        end = info.frames if self.end_frame is None else self.end_frame
        if end > info.frames:
            problems.append(f"{self.describe()}: end_frame {end} is beyond the video's {info.frames} frames")
        if self.start_frame >= min(end, info.frames):
            problems.append(f"{self.describe()}: start_frame {self.start_frame} leaves no frames "
                            f"(the video has {info.frames})")
        elif full:
            try:
                for _ in self._decode(list(range(self.start_frame, min(end, info.frames)))):
                    pass
            except DataError as e:
                problems.append(str(e))
        return problems


def read_video_manifest(path: str | os.PathLike[str], errors: list[DataError] | None = None) -> EpisodeDataset:
    """Read a video dataset from its ``manifest.csv`` (or the folder holding it) -> format "video".

    No video is opened here. A missing required column raises DataError naming the file; a bad row
    (empty path, non-integer or negative start_frame/end_frame, end_frame <= start_frame) raises
    DataError naming ``manifest.csv row N`` (1-based data row), or, when ``errors`` is a list, is
    appended to it and skipped.
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
        meta = {k: v for k, v in row.items() if k not in ("path", "text", "start_frame", "end_frame", "")}
        frames = VideoFrames(manifest.parent / file, start, None if end == -1 else end)
        return Episode(frames=frames, text=row["text"], source=where, meta=meta)

    return EpisodeDataset(collect_rows(rows, manifest, build, errors), root=str(manifest.parent), format="video")


def read_video_file(path: str | os.PathLike[str], text: str) -> EpisodeDataset:
    """One episode: the whole video file at ``path``, annotated with ``text`` -> format "video"."""
    if not Path(path).is_file():
        raise DataError(str(path), "video file not found")
    episode = Episode(frames=VideoFrames(path), text=text, source=str(path))
    return EpisodeDataset([episode], root=str(path), format="video")


def write_video(path: str | os.PathLike[str], frames: np.ndarray, fps: float = 10, codec: str | None = None,
                pix_fmt: str | None = None, lossless: bool = False, gop: int = 10,
                options: dict[str, str] | None = None) -> Path:
    """Encode ``frames`` (T, H, W, 3) uint8 RGB at ``fps`` frames/s into ``path`` -> path.

    The container follows the suffix. Default codecs: libx264 (mp4, mkv, mov), libvpx (webm), mpeg4
    (avi), at high quality but lossy. ``lossless=True`` picks libx264rgb (mp4, mkv, mov) or ffv1 (avi),
    both pixel-exact, or VP9 lossless (webm: exact in YUV 4:4:4, within ~2 levels after RGB
    conversion). ``gop`` is the keyframe interval in frames (small values make random access cheap).
    ``options`` are extra encoder options (e.g. ``{"crf": "0"}``). yuv420p needs even H and W.
    """
    av = _av()
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"{path}: frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}")
    suffix = path.suffix.lower()
    if suffix not in _CODECS:
        raise ValueError(f"{path}: unsupported container {suffix!r}; use one of {', '.join(_CODECS)}")
    opts: dict[str, str] = {}
    if lossless:
        codec, pix_fmt, preset = _LOSSLESS[suffix]
        opts = dict(preset)
    else:
        codec = codec or _CODECS[suffix]
        opts = {"libx264": {"crf": "12"}, "libvpx": {"crf": "4", "b": "20M"}, "libvpx-vp9": {"crf": "10", "b": "0"}
                }.get(codec, {})
        pix_fmt = pix_fmt or "yuv420p"
    opts.update(options or {})
    height, width = frames.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(f"{path}: {codec} with pix_fmt yuv420p needs even height and width, got {height}x{width}; "
                         f"crop the frames or pass pix_fmt='yuv444p' (libx264) / lossless=True")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(100_000))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        if codec == "mpeg4":
            stream.codec_context.bit_rate = int(8 * width * height * fps)
        stream.options = opts
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_video_manifest(root: str | os.PathLike[str], episodes: Iterable[tuple[str, np.ndarray]],
                         container: str = "mp4", fps: float = 10, **video_options) -> Path:
    """Write each (text, frames (T, H, W, 3) uint8) as ``root/videos/episode_XXXXXX.<container>`` plus
    ``root/manifest.csv`` with columns ``path,text`` -> manifest path. ``video_options`` go to
    :func:`write_video`."""
    root = Path(root)
    rows = []
    for k, (text, frames) in enumerate(episodes):
        name = f"videos/episode_{k:06d}.{container.lstrip('.')}"
        write_video(root / name, frames, fps=fps, **video_options)
        rows.append([name, text])
    manifest = root / MANIFEST_NAME
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "text"])
        writer.writerows(rows)
    return manifest
