"""Decoding throughput of each dataset format; prints one line of JSON.

Generates 20 episodes x 100 frames of smooth 224x224 images in a temporary folder, writes them as
frame folders (png, jpg), mp4 videos (libx264, keyframe every 10 frames) and, when the reader exists,
a LeRobot v3.0 dataset (its first 3 episodes; keyframe every 2 frames), then measures for each:

- ``random_fps``: distinct frames decoded per second over 80 samples, each 5 uniformly random frames
  of one episode read in one call (as for training), with files opened once before (steady state);
- ``sequential_fps``: frames per second when reading whole episodes in order.

Run: ``PYTHONPATH=src python bench/decode_fps.py`` (about half a minute on one CPU core).
"""

from __future__ import annotations

import importlib.util
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from liv.data.episodes import EpisodeDataset
from liv.data.frame_folders import read_frame_folders, write_frame_folders
from liv.data.video_files import read_video_manifest
from liv.data.video_write import write_video_manifest

EPISODES, LENGTH, SIZE, PER_SAMPLE, SAMPLES = 20, 100, 224, 5, 80
LEROBOT_EPISODES = 3  # write_lerobot's per-episode image statistics take seconds each: keep the run short


def smooth_episode(length: int, size: int, seed: int) -> np.ndarray:
    """(T, size, size, 3) uint8: drifting colour waves and a moving blob (compresses like real video)."""
    rng = np.random.default_rng(seed)
    u = np.arange(size, dtype=np.float32) / size
    phase = rng.uniform(0, 2 * np.pi, 3)
    out = np.empty((length, size, size, 3), np.uint8)
    for t in range(length):
        s = t / length
        cx, cy = 0.5 + 0.3 * np.cos(2 * np.pi * s + phase[0]), 0.5 + 0.3 * np.sin(2 * np.pi * s + phase[1])
        # Both terms are separable in (y, x): outer products instead of per-pixel transcendentals.
        blob = np.outer(np.exp(-((u - cy) ** 2) / 0.01), np.exp(-((u - cx) ** 2) / 0.01))
        for c in range(3):
            a, b = 2 * np.pi * u * (c + 1), 2 * np.pi * (u + s) + phase[c]  # sin(a_x + b_y)
            wave = 0.5 + 0.5 * (np.outer(np.cos(b), np.sin(a)) + np.outer(np.sin(b), np.cos(a)))
            out[t, :, :, c] = np.clip(255 * (0.7 * wave + 0.3 * blob), 0, 255)
    return out


def measure(dataset: EpisodeDataset, seed: int = 0) -> dict[str, float]:
    """Random-sample and sequential decoding rates of ``dataset`` -> frames per second."""
    rng = np.random.default_rng(seed)
    for episode in dataset:  # open files and fill per-process caches once, as a DataLoader worker would
        episode.read([0])
    decoded, start = 0, time.perf_counter()
    for k in range(SAMPLES):
        episode = dataset[k % len(dataset)]
        indices = rng.integers(0, len(episode), PER_SAMPLE)
        episode.read(indices)
        decoded += len(np.unique(indices))
    random_fps = decoded / (time.perf_counter() - start)
    start = time.perf_counter()
    frames = sum(len(episode.all_frames()) for episode in dataset)
    return {"random_fps": round(random_fps, 1), "sequential_fps": round(frames / (time.perf_counter() - start), 1)}


def main() -> None:
    began, cpu = time.perf_counter(), time.process_time()
    episodes = [(f"task {k % 4}", smooth_episode(LENGTH, SIZE, k)) for k in range(EPISODES)]
    results: dict[str, object] = {"episodes": EPISODES, "frames_per_episode": LENGTH, "size": SIZE,
                                  "frames_per_sample": PER_SAMPLE, "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results["png"] = measure(read_frame_folders(write_frame_folders(root / "png", episodes, "png")))
        results["jpg"] = measure(read_frame_folders(write_frame_folders(root / "jpg", episodes, "jpg")))
        results["mp4"] = measure(read_video_manifest(write_video_manifest(root / "mp4", episodes, "mp4", gop=10,
                                                                     options={"preset": "veryfast"})))
        if importlib.util.find_spec("liv.data.lerobot") is not None:
            from liv.data.lerobot import read_lerobot
            from liv.data.lerobot_write import write_lerobot

            subset = [{"frames": f, "task": t} for t, f in episodes[:LEROBOT_EPISODES]]
            write_lerobot(root / "lerobot", subset, fps=10, version="v3.0")
            results["lerobot_v3"] = measure(read_lerobot(root / "lerobot")) | {"episodes": LEROBOT_EPISODES}
    # Wall and CPU time: a wall time far above the CPU time means the machine was busy with other work.
    results["seconds"] = round(time.perf_counter() - began, 1)
    results["cpu_seconds"] = round(time.process_time() - cpu, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
