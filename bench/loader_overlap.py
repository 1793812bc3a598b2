"""Training-loop throughput of `liv train` with frames decoded in the loop or in loader workers.

    PYTHONPATH=src:bench python bench/loader_overlap.py --preset clip-tiny --batch 32 --steps 40

Writes an mp4 dataset (``--episodes`` x ``--length`` smooth frames of ``--size`` px, keyframe every
10 frames) in a temporary folder, then runs the real training loop (liv.train.train, fine-tuning
sampling, random resized crops) once per ``--workers`` setting and prints ONE line of JSON: samples/s
over the steps after the first log interval (the loader's start-up excluded), per setting, and the
decode+crop rate of one batch alone for comparison.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from decode_fps import smooth_episode
from liv.data.video_files import read_video_manifest
from liv.data.video_write import write_video_manifest
from liv.models.presets import get_preset
from liv.train import train
from liv.training.batches import StreamSpec, make_batch
from liv.training.config import build_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="clip-tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    result: dict = {"preset": args.preset, "batch": args.batch, "steps": args.steps, "device": args.device,
                    "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        texts = ["open the drawer", "close the drawer", "press the button", "turn the faucet left"]
        manifest = write_video_manifest(root, [(texts[k % 4], smooth_episode(args.length, args.size, k))
                                               for k in range(args.episodes)], "mp4", gop=10,
                                        options={"preset": "veryfast"})
        episodes = read_video_manifest(manifest).episodes
        spec = StreamSpec(resolution=get_preset(args.preset).config.image_resolution)
        make_batch(episodes, spec, 0, 0, range(args.batch))  # open the files once
        start = time.perf_counter()
        make_batch(episodes, spec, 0, 1, range(args.batch))
        result["batch_decode_samples_per_s"] = round(args.batch / (time.perf_counter() - start), 1)
        for workers in args.workers:
            out = Path(tmp) / f"run{workers}"
            train(build_config({"data": manifest, "out": out, "init": args.preset, "steps": args.steps,
                                "batch_size": args.batch, "num_workers": workers, "log_every": args.log_every,
                                "save_every": 0, "progress": False, "check_data": False,
                                "device": args.device}))
            records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            rates = [r["samples_per_s"] for r in records[1:]]  # the first interval includes start-up
            result[f"samples_per_s_workers_{workers}"] = round(sum(rates) / len(rates), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
