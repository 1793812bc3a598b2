"""The frame index of a video file: which timestamp frame i carries, and where decoding can start.

Frame i of a video is the i-th frame it shows, whatever its timing. The index is built from the file
itself: every packet's presentation timestamp (pts) is read by demuxing (no decoding), the shown ones
are sorted, and position i of that sorted list is frame i. That holds for a first frame later than the
stream's start (B-frames in AVI, MP4 edit lists), for variable frame rates (dropped frames,
millisecond time bases) and for constant rates alike. Decoding starts with a backward seek to a
keyframe's timestamp, and every decoded frame is identified by the timestamp it carries.

Every file is decoded from its start to its first keyframe (for most files: one frame), because
decoders drop what they cannot reconstruct there: packets before the first keyframe (a stream-copy
cut that starts mid-GOP, an open GOP's leading pictures) and, with intra refresh, the frames until
the picture is whole again. Two kinds of file need more decoding, and get it only when their
packets show the kind:

* timestamps in decoding order although the codec reorders frames (H.264 with B-frames in AVI, whose
  muxer has no presentation times): the file is decoded once, and frame i is the i-th frame out of the
  decoder, identified by the timestamp it carries. Increasing timestamps from a codec that can reorder
  are checked on the first :data:`PROBE_FRAMES` decoded frames when the header does not announce
  reordering (some encoders leave it out);
* packets without any timestamp: the file is decoded once to count the frames the decoder delivers, and
  every read counts them again from the start (slow, but right).

Left out are packets that are never shown: empty packets (the demuxer's end-of-stream marker) and
packets marked discard (MP4 edit-list pre-roll, which the decoder decodes for reference and drops).
A file whose frames share a timestamp cannot be indexed: ``problem`` says so, and readers refuse it.
An index is built once per file and process, keyed by the file's path and identity (inode, size,
modification and status-change times: :func:`liv.data.open_files.file_identity`), so a file changed
on disk in any way is indexed again (bench/video_index.py measures the cost per hour of video).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from liv.data.episodes import DataError
from liv.data.open_files import file_identity

_INDEXES: dict[tuple[str, tuple[int, int, int, int]], "VideoIndex"] = {}
REORDERING_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video", "vc1", "wmv3", "msmpeg4v3"})
"""Codecs whose decoders may output frames in another order than their packets (B-frames)."""
PROBE_FRAMES = 64
"""Frames decoded from the start to see whether decoding-order timestamps hide reordering (module docstring)."""


@dataclass
class VideoIndex:
    """What liv knows about the video stream of one file (built by :func:`build_index`)."""

    pts: np.ndarray
    """(T,) int64: the timestamp (``time_base`` units) carried by the i-th shown frame; increasing unless
    ``decode_order``; empty when the file's packets carry no timestamps (``counted``)."""
    frames: int
    """Number of frames T the video shows."""
    keyframes: list[int]
    """Sorted frame indices whose packet is a keyframe (decoding can start there)."""
    time_base: Fraction
    """Seconds per timestamp unit."""
    rate: Fraction | None
    """The stream's nominal frame rate (frames/s, :func:`nominal_rate`): frame i is never computed from it."""
    header_frames: int | None = None
    """Frame count the header claims, when it exceeds the packets present (shown or not) by more than one
    and their time span: a truncated file, or frames the container does not show (an edit list that
    skips them; a duration set by a longer audio track)."""
    problem: str | None = None
    """Why frames of this file cannot be told apart by timestamp (repeated timestamps), or None."""
    counted: bool = False
    """True when packets carry no timestamps: frames are then counted while decoding from the start."""
    decode_order: bool = False
    """True when the timestamps follow decoding, not display, order (the display order came from a decode)."""
    _sorted: np.ndarray = field(init=False, repr=False)
    _order: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._order = np.argsort(self.pts, kind="stable") if self.decode_order else None
        self._sorted = self.pts if self._order is None else self.pts[self._order]

    def position(self, pts: int | None) -> int | None:
        """Frame index of the frame carrying timestamp ``pts``, or None when no shown frame carries it."""
        if pts is None or self.counted:
            return None
        i = int(np.searchsorted(self._sorted, pts))
        if i == len(self._sorted) or int(self._sorted[i]) != pts:
            return None
        return i if self._order is None else int(self._order[i])

    def describe(self, index: int) -> str:
        """``frame i`` with its presentation time when the file has one, for messages."""
        if self.counted or self.decode_order:
            return f"frame {index}"
        return f"frame {index} (shown at {float(int(self.pts[index]) * self.time_base):.6f} s)"

    def times(self, start: int, stop: int) -> np.ndarray | None:
        """(stop - start,) float64 seconds of frames [start, stop) from frame ``start``, None without timestamps.

        Presentation times; for a ``decode_order`` file the sorted timestamps, which in AVI count frame
        periods: a dropped frame shows as a gap, near its place but, with B-frames, not always at it."""
        if self.counted:
            return None
        pts = self._sorted[start:stop]
        return (pts - pts[:1]).astype(np.float64) * float(self.time_base)

    def average_rate(self) -> float | None:
        """Frames per second over the shown frames' time span (a variable-rate video's mean rate), else the
        nominal :attr:`rate`; None when neither is known."""
        if not self.counted and len(self._sorted) > 1:
            span = (int(self._sorted[-1]) - int(self._sorted[0])) * self.time_base
            if span > 0:
                return float((len(self._sorted) - 1) / span)
        return float(self.rate) if self.rate else None

    def keyframe_before(self, index: int) -> int:
        """Position in ``keyframes`` of the last keyframe at or before frame ``index`` (-1 if none)."""
        return bisect_right(self.keyframes, index) - 1


def nominal_rate(stream) -> Fraction | None:
    """A PyAV video stream's nominal frame rate in frames/s (FFmpeg's ``r_frame_rate``, exact for
    constant-rate video; else the average or guessed rate), or None when the header gives none."""
    rate = stream.base_rate or stream.average_rate or stream.guessed_rate
    return Fraction(rate) if rate else None


def cached_index(path: str, open_container) -> VideoIndex:
    """The index of the video at ``path``, built on first use in this process (see :func:`build_index`).

    Raises DataError naming ``path`` when the file is missing or its packets cannot be read.
    """
    try:
        key = (path, file_identity(path))  # a file changed on disk in any way is indexed again
    except OSError as e:
        raise DataError(path, f"cannot open video ({e.strerror or e})") from None
    if key not in _INDEXES:
        _INDEXES[key] = build_index(open_container, path)
    return _INDEXES[key]


def build_index(open_container, path: str) -> VideoIndex:
    """Index the first video stream of the file at ``path`` -> its VideoIndex.

    ``open_container()`` returns a freshly opened PyAV input container of the file; it is called once
    to demux every packet and once more only for the kinds of file that need decoding (module
    docstring). Raises DataError naming ``path`` if the stream has no time base or its packets cannot
    be read or decoded.
    """
    import av

    container = open_container()
    stream = container.streams.video[0]
    if stream.time_base is None:
        raise DataError(path, "the video stream has no time base")
    # Read everything needed from this container now: opening the file again for a decode may close it.
    time_base = Fraction(stream.time_base)
    rate = nominal_rate(stream)
    # Matroska's duration runs from time 0, MP4's from the first frame: subtracting the start never over-claims.
    # What the header says the video lasts, in frames and seconds. A container's duration is the longest
    # stream's (audio may outlast the video), so it counts only for a file with no audio.
    if stream.duration:
        seconds = float(stream.duration * time_base)
    elif container.duration and not container.streams.audio:
        seconds = (container.duration - (container.start_time or 0)) / 1_000_000
    else:
        seconds = 0.0
    claimed = stream.frames or (round(seconds * rate) if seconds > 0 and rate else 0)
    reorders = bool(stream.codec_context.has_b_frames)
    may_reorder = reorders or stream.codec_context.name in REORDERING_CODECS
    shown, keys, untimed, packets, first_key = [], [], 0, 0, None
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            packets += 1  # the header counts discarded (never shown) frames too
            if packet.is_discard:
                continue
            if packet.pts is None:
                untimed += 1
                continue
            shown.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
                first_key = packet.pts if first_key is None else first_key
        decode_order = in_order = False
        if untimed:
            # No timestamps (raw streams, some AVI muxers): frames are counted as the decoder delivers them.
            shown = _decoder_output(open_container())
        elif may_reorder and len(shown) > 1 and all(a < b for a, b in zip(shown, shown[1:])):
            # A codec that reorders frames, yet timestamps in decoding order: they are not presentation times.
            head = None if reorders else _decoder_output(open_container(), limit=PROBE_FRAMES)
            if head is None or head != sorted(head, key=_none_first):
                shown = _decoder_output(open_container())  # what the decoder delivers, in display order
                decode_order, in_order = shown != sorted(shown, key=_none_first), True
        if not untimed and not in_order and shown:
            # Decoders drop what they cannot reconstruct at the start: packets before the first keyframe (a
            # cut mid-GOP, an open GOP's leading pictures) and, with intra refresh, the frames until the
            # picture is whole again. Decode from the start to the first frame shown at or after the first
            # keyframe (for most files: the first frame); what came before it and was not shown is left out.
            until = min(shown) if first_key is None else first_key
            delivered = _decoder_output(open_container(), until=until)
            if delivered and delivered[-1] is not None:
                shown = [pts for pts in shown if pts >= delivered[-1] or pts in set(delivered)]
    except (av.FFmpegError, OSError) as e:
        raise DataError(path, f"cannot read the video's packets ({type(e).__name__}: {e}); the file is corrupt or "
                              f"truncated") from None
    if untimed or None in shown:
        # Nothing identifies a frame but its place in the decoder's output from the start.
        index = VideoIndex(pts=np.zeros(0, np.int64), frames=len(shown), keyframes=[],
                           time_base=time_base, rate=rate, counted=True)
    else:
        pts = np.asarray(shown, dtype=np.int64)
        index = VideoIndex(pts=pts if decode_order else np.sort(pts), frames=len(shown), keyframes=[],
                           time_base=time_base, rate=rate, decode_order=decode_order)
        repeated = np.flatnonzero(np.diff(index._sorted) == 0)
        if len(repeated):
            i = int(repeated[0])
            a, b = sorted((i, i + 1) if index._order is None else map(int, index._order[i:i + 2]))
            index.problem = (f"frames {a} and {b} have the same timestamp "
                             f"({float(int(index._sorted[i]) * index.time_base):.6f} s; {len(repeated)} repeat in "
                             f"all), so frames cannot be told apart by timestamp")
        else:
            index.keyframes = sorted(p for p in map(index.position, keys) if p is not None)
    if claimed and claimed > packets + 1 and not _spans(index, seconds or (claimed / rate if rate else 0)):
        index.header_frames = int(claimed)
    return index


def _spans(index: VideoIndex, seconds: float) -> bool:
    """Whether the frames present span the header's ``seconds``: AVI counts a dropped frame as an empty chunk,
    which demuxers skip, so fewer packets than claimed is a truncated file only if time is missing too."""
    rate = index.average_rate()
    if index.counted or not rate or not len(index.pts):
        return False
    present = float((int(index._sorted[-1]) - int(index._sorted[0])) * index.time_base) + 1 / rate
    return seconds <= present + 1.5 / rate


def _none_first(pts: int | None) -> float:
    return -np.inf if pts is None else pts


def _decoder_output(container, until: int | None = None, limit: int | None = None) -> list[int | None]:
    """Timestamps of the frames a decode of ``container`` from its start delivers, in output order; with
    ``until``, up to and including the first frame whose timestamp is ``until`` or later; with ``limit``,
    at most that many."""
    out: list[int | None] = []
    for frame in container.decode(container.streams.video[0]):
        out.append(frame.pts)
        if until is not None and frame.pts is not None and frame.pts >= until:
            break
        if limit is not None and len(out) >= limit:
            break
    return out
