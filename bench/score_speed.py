"""Scoring speed of a video (decode + encode, as `liv reward` does), with and without reading ahead.

    PYTHONPATH=src python bench/score_speed.py --preset clip-tiny --frames 1024
    PYTHONPATH=src python bench/score_speed.py --preset clip-rn50 --frames 512 --device cuda

Writes one mp4 of smooth ``--size`` px frames in a temporary folder, then embeds it with
liv.eval.commands.embed_episode in alternation with ``read_ahead_chunks`` 0 (decode, then encode) and
1 (the next chunk decodes in a background thread), and prints ONE line of JSON: decode-only and
encode-only frames/s, both scoring rates (median of ``--rounds``), their ratio, and whether the
embeddings agree exactly.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

import liv
from liv.data.video_files import read_video_manifest
from liv.data.video_write import write_video_manifest
from liv.eval.commands import embed_episode
from decode_fps import smooth_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="clip-tiny")
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--size", type=int, default=224, help="side of the video's frames in pixels")
    parser.add_argument("--batch-size", type=int, default=64, help="frames per image-encoder pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = liv.create(args.preset).to(device)

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    with tempfile.TemporaryDirectory() as tmp:
        frames = smooth_episode(args.frames, args.size, 0)
        episode = read_video_manifest(write_video_manifest(Path(tmp), [("score me", frames)], "mp4", gop=30,
                                                           options={"preset": "veryfast"}))[0]
        decode_s, decoded = timed(episode.all_frames)
        encode_s, _ = timed(lambda: model.encode_images(decoded, batch_size=args.batch_size))
        embed_episode(model, episode, args.batch_size)  # warm-up
        times: dict[int, list[float]] = {0: [], 1: []}
        results = {}
        for _ in range(args.rounds):
            for ahead in (0, 1):
                seconds, results[ahead] = timed(lambda: embed_episode(model, episode, args.batch_size,
                                                                      read_ahead_chunks=ahead))
                times[ahead].append(seconds)
    sequential, overlapped = statistics.median(times[0]), statistics.median(times[1])
    print(json.dumps({
        "preset": args.preset, "device": str(device), "frames": args.frames, "size": args.size,
        "resolution": model.image_resolution, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "decode_fps": round(args.frames / decode_s, 1), "encode_fps": round(args.frames / encode_s, 1),
        "score_fps_sequential": round(args.frames / sequential, 1),
        "score_fps_read_ahead": round(args.frames / overlapped, 1),
        "read_ahead_speedup": round(sequential / overlapped, 3),
        "embeddings_equal": bool(torch.equal(results[0], results[1])),
    }))


if __name__ == "__main__":
    main()
