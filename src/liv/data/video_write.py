"""Writing videos with PyAV: one file per episode, and a ``manifest.csv`` that liv's video reader opens."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

from liv.data.manifests import MANIFEST_NAME
from liv.data.video_files import _av

_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx", ".avi": "mpeg4"}
_LOSSLESS = {".mp4": ("libx264rgb", "rgb24", {"qp": "0"}), ".mov": ("libx264rgb", "rgb24", {"qp": "0"}),
             ".mkv": ("libx264rgb", "rgb24", {"qp": "0"}), ".avi": ("ffv1", "bgr0", {}),
             ".webm": ("libvpx-vp9", "yuv444p", {"lossless": "1"})}


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
