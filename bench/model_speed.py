"""Training and embedding speed of a preset, normalised by this machine's peak measured in the same run.

    python bench/model_speed.py --preset clip-rn50 --batch 8
    python bench/model_speed.py --preset clip-tiny --batch 32 --device cuda

Prints ONE line of JSON: measured peak (fp32 matmul and 3x3 conv, GFLOP/s), fine-tuning step time,
achieved GFLOP/s (counted with torch.utils.flop_counter), samples/s per TFLOP/s of conv peak, image
and text embedding throughput (texts at their real length and padded to 77 positions), peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import liv  # noqa: E402
from liv.objectives import FINETUNE_WEIGHTS  # noqa: E402
from liv.training.objective import Objective  # noqa: E402
from liv.training.speed import compile_towers, make_optimizer, prepare_for_training  # noqa: E402

INSTRUCTIONS = ["open the drawer", "close the drawer", "turn the faucet left", "press the button"]


def synchronize(device: torch.device) -> None:
    """Wait for the queued work of ``device`` (a no-op on CPU), so that wall times measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def _best_time(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after one warm-up call (seconds)."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure_peak(device: torch.device) -> dict[str, float]:
    """fp32 GFLOP/s of a large matmul and of a large 3x3 convolution on ``device``."""
    n = 2048 if device.type == "cpu" else 8192
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t_mm = _best_time(lambda: a @ b, device, 3)
    x = torch.randn(8 if device.type == "cpu" else 64, 256, 56, 56, device=device)
    w = torch.randn(256, 256, 3, 3, device=device)
    conv_flops = 2 * x.shape[0] * 256 * 256 * 9 * 56 * 56
    t_conv = _best_time(lambda: torch.nn.functional.conv2d(x, w, padding=1), device, 3)
    return {"matmul_gflops": 2 * n**3 / t_mm / 1e9, "conv3x3_gflops": conv_flops / t_conv / 1e9}


def encode_text_all_positions(clip, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower over all context positions, as CLIP without the cut computes it (for comparison)."""
    x = clip.token_embedding(tokens) + clip.positional_embedding
    x = clip.ln_final(clip.transformer(x))
    return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(-1)] @ clip.text_projection


def fine_tuning_step(model, batch: dict, autocast=None) -> Callable[[], torch.Tensor]:
    """A function making one fine-tuning step of ``model`` on ``batch`` as `liv train` does (the LIV
    objective at fine-tuning weights, backward, the reference's Adam settings fused) and returning the
    step's detached loss (0-dim). ``autocast``: a context the forward pass runs in (e.g. bf16 on CUDA)."""
    optimizer = make_optimizer(model.parameters(), 1e-5, (0.9, 0.98), 1e-6, 1e-3)
    objective = Objective("liv", FINETUNE_WEIGHTS)

    def step() -> torch.Tensor:
        with autocast or contextlib.nullcontext():
            loss, _ = objective(model, batch, 0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def make_batch(batch: int, resolution: int) -> dict:
    """A fine-tuning batch as liv.training.batches makes it: 4 distinct frames per sample."""
    slots = torch.tensor([[4 * b, 4 * b + 3, 4 * b + 1, 4 * b + 2, 4 * b + 3] for b in range(batch)])
    return {"pixels": torch.rand(4 * batch, 3, resolution, resolution), "slots": slots,
            "texts": [INSTRUCTIONS[b % len(INSTRUCTIONS)] for b in range(batch)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="clip-tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--embed-images", type=int, default=32)
    parser.add_argument("--grad-checkpointing", action="store_true", help="recompute activations in backward")
    parser.add_argument("--compile", action="store_true", help="torch.compile both towers (as liv train --compile)")
    args = parser.parse_args()
    device = torch.device(args.device)

    peak = measure_peak(device)
    model = liv.create(args.preset).to(device).train()
    prepare_for_training(model)  # as liv train does
    model.clip.set_grad_checkpointing(args.grad_checkpointing)
    step = fine_tuning_step(model, make_batch(args.batch, model.image_resolution))
    with FlopCounterMode(display=False) as counter:  # on the plain model: compiling changes no FLOP count
        step()
    step_flops = counter.get_total_flops()
    compile_s = None
    if args.compile:
        compile_towers(model)
        start = time.perf_counter()
        step()  # the first step compiles the training graphs
        synchronize(device)
        compile_s = time.perf_counter() - start
    step_s = _best_time(step, device, args.repeats)

    model.eval()
    frames = np.random.default_rng(0).integers(0, 256, (args.embed_images, model.image_resolution,
                                                         model.image_resolution, 3), dtype=np.uint8)
    image_s = _best_time(lambda: model.encode_images(frames, batch_size=args.embed_images), device, args.repeats)
    texts = [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(256)]
    tokens = model.tokenize(texts)
    with torch.no_grad():
        short_s = _best_time(lambda: model.clip.encode_text(tokens), device, args.repeats)
        full_s = _best_time(lambda: encode_text_all_positions(model.clip, tokens), device, args.repeats)
        cut_error = (encode_text_all_positions(model.clip, tokens) - model.clip.encode_text(tokens)).abs().max()

    samples_per_s = args.batch / step_s
    result = {
        "preset": args.preset, "batch": args.batch, "grad_checkpointing": args.grad_checkpointing,
        "compile": args.compile, "first_step_s": None if compile_s is None else round(compile_s, 1),
        "device": str(device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "peak_matmul_gflops": round(peak["matmul_gflops"], 1), "peak_conv_gflops": round(peak["conv3x3_gflops"], 1),
        "step_s": round(step_s, 3), "samples_per_s": round(samples_per_s, 3),
        "step_gflop": round(step_flops / 1e9, 1), "achieved_gflops": round(step_flops / step_s / 1e9, 1),
        "samples_per_s_per_tflops": round(samples_per_s / (peak["conv3x3_gflops"] / 1000), 2),
        "images_per_s": round(args.embed_images / image_s, 2),
        "images_per_s_per_tflops": round(args.embed_images / image_s / (peak["conv3x3_gflops"] / 1000), 1),
        "texts_per_s": round(len(texts) / short_s, 1), "texts_per_s_all_77": round(len(texts) / full_s, 1),
        "text_speedup_vs_77": round(full_s / short_s, 2), "text_cut_max_abs_diff": float(cut_error),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if device.type == "cuda":
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
