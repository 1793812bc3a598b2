"""The frame index of a video file: which timestamp frame i is shown at, and where decoding can start.

Frame i of a video is the i-th frame it shows, whatever its timing. The index is built from the file
itself: every packet's presentation timestamp (pts) is read by demuxing (no decoding), the shown ones
are sorted, and position i of that sorted list is frame i. That holds for a first frame later than the
stream's start (B-frames in AVI, MP4 edit lists, open GOPs), for variable frame rates (dropped frames,
millisecond time bases) and for constant rates alike. Keyframes are kept as frame indices: decoding
starts with a backward seek to a keyframe's presentation timestamp.

Packets that are never shown are left out: empty packets (the demuxer's end-of-stream marker) and
packets marked discard (MP4 edit-list pre-roll, which the decoder decodes for reference and drops).
An index is built once per file and process, keyed by the file's path, size and modification time,
so a file changed on disk is indexed again. Its cost is one pass over the file's bytes without
decoding (bench/video_index.py measures it per hour of video).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from liv.data.episodes import DataError

_INDEXES: dict[tuple[str, int, int], "VideoIndex"] = {}


@dataclass
class VideoIndex:
    """What liv knows about the video stream of one file (built by :func:`build_index`)."""

    pts: np.ndarray
    """(T,) int64 sorted presentation timestamps of the shown frames, in ``time_base`` units; empty when the
    file's packets carry no timestamps (``counted``)."""
    frames: int
    """Number of frames T the video shows."""
    keyframes: list[int]
    """Sorted frame indices whose packet is a keyframe (decoding can start there)."""
    time_base: Fraction
    """Seconds per timestamp unit."""
    rate: Fraction | None
    """The container's average frame rate (frames/s), for display only: frame i is never computed from it."""
    header_frames: int | None = None
    """Frame count the header claims, when it exceeds the packets present (shown or not) by more than one:
    a truncated file."""
    problem: str | None = None
    """Why frames of this file cannot be told apart by timestamp (repeated timestamps), or None."""
    counted: bool = False
    """True when packets carry no timestamps: frames are then counted while decoding from the start."""

    def position(self, pts: int | None) -> int | None:
        """Frame index of presentation timestamp ``pts``, or None when no shown frame has that timestamp."""
        if pts is None or self.counted:
            return None
        i = int(np.searchsorted(self.pts, pts))
        return i if i < len(self.pts) and int(self.pts[i]) == pts else None

    def seconds(self, index: int) -> float:
        """Presentation time of frame ``index`` in seconds (relative to the stream's clock, not to frame 0)."""
        return float(int(self.pts[index]) * self.time_base)

    def keyframe_before(self, index: int) -> int:
        """Position in ``keyframes`` of the last keyframe at or before frame ``index`` (-1 if none)."""
        return bisect_right(self.keyframes, index) - 1

    def variable_rate(self) -> bool:
        """Whether the gaps between consecutive frames differ (by more than one timestamp unit of rounding)."""
        if self.counted or len(self.pts) < 3:
            return False
        gaps = np.diff(self.pts)
        return int(gaps.max()) - int(gaps.min()) > 1


def cached_index(path: str, open_container) -> VideoIndex:
    """The index of the video at ``path``, built on first use in this process.

    ``open_container()`` returns the open input container to demux (only called when building).
    Raises DataError naming ``path`` when the file is missing or its packets cannot be read.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(path, f"cannot open video ({e.strerror or e})") from None
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _INDEXES:
        _INDEXES[key] = build_index(open_container, path)
    return _INDEXES[key]


def build_index(open_container, path: str) -> VideoIndex:
    """Index the first video stream of the file at ``path`` -> its VideoIndex.

    ``open_container()`` returns a freshly opened PyAV input container of the file (called once to
    demux every packet and, only when packets are shown before the first keyframe, once more to
    decode up to that keyframe). Raises DataError naming ``path`` if the stream has no time base or
    its packets cannot be read.
    """
    import av

    container = open_container()
    stream = container.streams.video[0]
    if stream.time_base is None:
        raise DataError(path, "the video stream has no time base")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    # Matroska's duration runs from time 0, MP4's from the first frame: subtracting the start never over-claims.
    span = (container.duration or 0) - (container.start_time or 0)
    claimed = stream.frames or (round(span * rate / 1_000_000) if span > 0 and rate else 0)
    time_base = Fraction(stream.time_base)
    shown, keys, untimed, count, packets, first_key = [], [], 0, 0, 0, None
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            packets += 1  # the header counts discarded (never shown) frames too
            if packet.is_discard:
                continue
            count += 1
            if packet.pts is None:
                untimed += 1
                continue
            shown.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
                first_key = packet.pts if first_key is None else first_key
        if not untimed and first_key is not None and min(shown) < first_key:
            # Packets before the first keyframe (a stream copy cut mid-GOP, an open GOP's leading frames):
            # decoders drop those they cannot reconstruct, so whether each is shown is known only by decoding.
            shown = _shown_before_keyframe(open_container(), shown, first_key)
            count = len(shown)
    except (av.FFmpegError, OSError) as e:
        raise DataError(path, f"cannot read the video's packets ({type(e).__name__}: {e}); the file is corrupt or "
                              f"truncated") from None
    index = VideoIndex(pts=np.sort(np.asarray(shown, dtype=np.int64)), frames=count, keyframes=[],
                       time_base=time_base, rate=Fraction(rate) if rate else None)
    if untimed:
        # No timestamps to sort by (raw streams, some AVI muxers): frames can only be counted from the start.
        index.pts, index.counted = np.zeros(0, np.int64), True
    else:
        repeated = np.flatnonzero(np.diff(index.pts) == 0)
        if len(repeated):
            i = int(repeated[0])
            index.problem = (f"frames {i} and {i + 1} have the same timestamp ({index.seconds(i):.6f} s; "
                             f"{len(repeated)} repeat in all), so frames cannot be told apart by timestamp")
        index.keyframes = sorted(int(np.searchsorted(index.pts, pts)) for pts in keys)
    if claimed and claimed > packets + 1:
        index.header_frames = int(claimed)
    return index


def _shown_before_keyframe(container, shown: list[int], first_key: int) -> list[int]:
    """``shown`` without the timestamps before ``first_key`` that a decode from the start does not deliver."""
    stream = container.streams.video[0]
    delivered = set()
    for frame in container.decode(stream):
        if frame.pts is not None and frame.pts >= first_key:
            break
        delivered.add(frame.pts)
    return [pts for pts in shown if pts >= first_key or pts in delivered]
