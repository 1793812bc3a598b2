"""What the timestamp index of video files costs: building it per hour of video, and reading through it.

1. Index build: videos of ``--index-seconds`` are written once, then indexed ``--repeats`` times from a
   cold per-process cache; the median is scaled to seconds per hour of video, with the index's memory
   (8 bytes per frame plus keyframes). Kinds: H.264 mp4 with B-frames at 224 px and at 640x480 (a
   typical robot camera; demuxing only), H.264 mp4 without B-frames (its first 64 frames are decoded
   to rule out hidden reordering) and H.264 with B-frames in AVI (decoding-order timestamps: the whole
   file is decoded once).
2. Reading (only with ``--baseline-src``): the mp4 dataset of bench/decode_fps.py (20 episodes x 100
   frames, 224 px, keyframe every 10 frames) is written once and read in child processes, alternating
   this checkout's reader with the one under ``--baseline-src`` (the ``src`` of, e.g., a ``git worktree``
   of an older commit; its ``bench/decode_fps.py`` does the reading on that side) for ``--rounds`` rounds; prints the median random and sequential frames/s of each
   and their ratios (this / baseline).

Run: ``PYTHONPATH=src:bench python bench/video_index.py [--baseline-src ../old/src]`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from decode_fps import EPISODES, LENGTH, SIZE, smooth_episode
from liv.data import video_index
from liv.data.video_files import VideoFrames
from liv.data.video_write import write_video, write_video_manifest

FPS = 30


def index_cost(path: Path, seconds: float, repeats: int) -> dict[str, float]:
    """Median time to build the index of ``path`` (a video of ``seconds``), scaled to one hour of video."""
    times = []
    for _ in range(repeats):
        video_index._INDEXES.clear()
        start = time.perf_counter()
        index = VideoFrames(path).info()
        times.append(time.perf_counter() - start)
    per_hour = statistics.median(times) * 3600 / seconds
    size_mb = path.stat().st_size / 1e6
    return {"frames": index.frames, "file_mb": round(size_mb, 1), "build_s": round(statistics.median(times), 3),
            "s_per_hour_of_video": round(per_hour, 1), "mb_read_per_hour": round(size_mb * 3600 / seconds),
            "index_mb_per_hour": round((index.pts.nbytes + 8 * len(index.keyframes)) * 3600 / seconds / 1e6, 2)}


def long_video(path: Path, seconds: float, height: int, width: int, b_frames: int = 3) -> Path:
    """A ``seconds``-long smooth H.264 video (a 100-frame pattern repeated, with a frame counter band)."""
    pattern = smooth_episode(100, max(height, width), seed=0)[:, :height, :width]
    frames = np.concatenate([pattern] * int(np.ceil(seconds * FPS / 100)))[: int(seconds * FPS)]
    frames[:, :8, :] = (np.arange(len(frames)) % 256)[:, None, None, None]  # no two neighbours alike
    return write_video(path, frames, fps=FPS, gop=30, codec="libx264",
                       options={"preset": "veryfast", "crf": "23", "bf": str(b_frames)})


# Run in a child whose PYTHONPATH holds one checkout's src/ and bench/: each side reads with its own code.
_READ_RATES = ("import json, sys; from decode_fps import measure; from liv.data.video_files import read_video_manifest; "
               "print(json.dumps(measure(read_video_manifest(sys.argv[1]))))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index-seconds", type=float, default=300, help="length of the indexed videos, s (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ to compare reading with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        kinds = {"224px.mp4": (224, 224, 3), "640x480.mp4": (480, 640, 3), "640x480_no_b_frames.mp4": (480, 640, 0),
                 "640x480_b_frames.avi": (480, 640, 3)}
        for name, (h, w, b_frames) in kinds.items() if args.index_seconds > 0 else ():
            video = long_video(root / name, args.index_seconds, h, w, b_frames)
            results[f"index_{name}"] = index_cost(video, args.index_seconds, args.repeats)
            video.unlink()
        if args.baseline_src:
            episodes = [(f"task {k % 4}", smooth_episode(LENGTH, SIZE, k)) for k in range(EPISODES)]
            data = root / "mp4"
            write_video_manifest(data, episodes, "mp4", gop=10, options={"preset": "veryfast"})
            sources = {"this": Path(__file__).resolve().parents[1] / "src", "baseline": args.baseline_src.resolve()}
            runs: dict[str, list[dict[str, float]]] = {k: [] for k in sources}
            for _ in range(args.rounds):
                for name, src in sources.items():
                    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(src.parent / "bench")])}
                    out = subprocess.run([sys.executable, "-c", _READ_RATES, str(data)], env=env, check=True,
                                         capture_output=True, text=True).stdout
                    runs[name].append(json.loads(out))
            for key in ("random_fps", "sequential_fps"):
                med = {name: statistics.median(r[key] for r in runs[name]) for name in sources}
                results[key] = med | {"ratio": round(med["this"] / med["baseline"], 3)}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
