"""Peak memory and step time of fine-tuning against batch size, with and without gradient checkpointing.

    python bench/checkpointing_memory.py --preset clip-rn50 --batches 8 16 32 --checkpointed-only 64

Each (batch, checkpointing) pair runs in a fresh process, so its peak resident memory (ru_maxrss; on
CUDA also the peak of torch's allocator) is its own: model, optimiser state, one warm-up step and ``--steps`` timed steps of the LIV objective
(4 distinct frames per sample, as fine-tuning draws them). Prints ONE line of JSON with a row per pair.
``--checkpointed-only`` batches run only with checkpointing (those that would not fit without).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import liv  # noqa: E402
from liv.training.speed import prepare_for_training  # noqa: E402
from model_speed import fine_tuning_step, make_batch, synchronize  # noqa: E402


def run_one(preset: str, batch: int, checkpointing: bool, steps: int, device: torch.device) -> dict:
    """Train ``steps`` timed steps (after one warm-up) in this process -> its row of the table."""
    model = liv.create(preset).to(device).train()
    prepare_for_training(model)
    model.clip.set_grad_checkpointing(checkpointing)
    step = fine_tuning_step(model, make_batch(batch, model.image_resolution))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    step_s = min(times[1:])
    row = {"batch": batch, "grad_checkpointing": checkpointing, "step_s": round(step_s, 3),
           "samples_per_s": round(batch / step_s, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if device.type == "cuda":
        row["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="clip-tiny")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--checkpointed-only", type=int, nargs="*", default=[])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=1, help="timed steps after the warm-up (best is kept)")
    parser.add_argument("--one", nargs=2, metavar=("BATCH", "CHECKPOINTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child process: one configuration, one JSON row
        print(json.dumps(run_one(args.preset, int(args.one[0]), args.one[1] == "1", args.steps,
                                 torch.device(args.device))))
        return
    configs = [(b, c) for b in args.batches for c in (False, True)] + [(b, True) for b in args.checkpointed_only]
    rows = []
    for batch, checkpointing in configs:
        child = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps),
                                "--device", args.device, "--one", str(batch), str(int(checkpointing))],
                               capture_output=True, text=True, check=True)
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(json.dumps({"preset": args.preset, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "machine": platform.processor() or platform.machine(), "rows": rows}))


if __name__ == "__main__":
    main()
