"""What torch.compile buys (and costs) for one preset: eager and compiled copies of the same model,
timed in alternation in one run so that machine drift cancels out of the ratio.

    python bench/compile_speed.py --preset clip-tiny --batch 32 --rounds 5
    python bench/compile_speed.py --preset clip-rn50 --batch 8 --device cuda --bf16

Prints ONE line of JSON: compilation time (the first training step and the first embedding call of
the compiled copy), median eager and compiled times of a fine-tuning step (the LIV objective,
backward, fused Adam) and of image embedding, their ratios, and how far the compiled results are
from the eager ones (loss after the same updates; embeddings).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import liv  # noqa: E402
from liv.training.speed import compile_towers, prepare_for_training  # noqa: E402
from model_speed import fine_tuning_step, make_batch, synchronize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="clip-tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=5, help="alternating eager/compiled timings of each kind")
    parser.add_argument("--embed-images", type=int, default=64)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only), as liv train --bf16")
    args = parser.parse_args()
    device = torch.device(args.device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if args.bf16 and device.type == "cuda"
                else contextlib.nullcontext())

    eager = liv.create(args.preset).to(device).train()
    prepare_for_training(eager)
    compiled = copy.deepcopy(eager)
    compile_towers(compiled)
    batch = make_batch(args.batch, eager.image_resolution)
    steps = {id(m): fine_tuning_step(m, batch, autocast) for m in (eager, compiled)}
    losses: dict[int, list[float]] = {id(eager): [], id(compiled): []}

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        synchronize(device)
        return time.perf_counter() - start

    def step(model) -> None:
        losses[id(model)].append(steps[id(model)]().item())

    frames = np.random.default_rng(0).integers(0, 256, (args.embed_images, eager.image_resolution,
                                                         eager.image_resolution, 3), dtype=np.uint8)

    def embed(model) -> torch.Tensor:
        with autocast:
            return model.encode_images(frames, batch_size=args.embed_images)

    first_step_s = timed(lambda: step(compiled))
    timed(lambda: step(eager))
    first_embed_s = timed(lambda: embed(compiled))
    timed(lambda: embed(eager))
    times: dict[str, list[float]] = {"step_eager": [], "step_compiled": [], "embed_eager": [], "embed_compiled": []}
    for _ in range(args.rounds):
        times["step_eager"].append(timed(lambda: step(eager)))
        times["step_compiled"].append(timed(lambda: step(compiled)))
        times["embed_eager"].append(timed(lambda: embed(eager)))
        times["embed_compiled"].append(timed(lambda: embed(compiled)))
    med = {k: statistics.median(v) for k, v in times.items()}
    embedding_diff = (embed(eager) - embed(compiled)).abs().max().item()
    loss_diff = max(abs(a - b) for a, b in zip(losses[id(eager)], losses[id(compiled)]))
    print(json.dumps({
        "preset": args.preset, "batch": args.batch, "device": str(device), "bf16": args.bf16,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "rounds": args.rounds,
        "compile_first_step_s": round(first_step_s, 1), "compile_first_embed_s": round(first_embed_s, 1),
        **{f"{k}_s": round(v, 4) for k, v in med.items()},
        "step_speedup": round(med["step_eager"] / med["step_compiled"], 3),
        "embed_speedup": round(med["embed_eager"] / med["embed_compiled"], 3),
        "break_even_steps": (round((first_step_s - med["step_compiled"]) / (med["step_eager"] - med["step_compiled"]))
                             if med["step_eager"] > med["step_compiled"] else None),
        "max_loss_diff": loss_diff, "max_embedding_diff": embedding_diff,
    }))


if __name__ == "__main__":
    main()
