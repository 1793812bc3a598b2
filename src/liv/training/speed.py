"""Layout choices that make training faster without changing what is computed."""

from __future__ import annotations

import math

import torch


def prepare_for_training(model) -> None:
    """Store the image tower channels-last (in place); the tower converts its input to match.

    Measured 2026-11-21 on the project's 2-core x86_64 CPU machine (fp32, fused Adam): clip-rn50
    fine-tuning step at batch 8 14.4 s -> 8.8 s, clip-tiny at batch 32 0.35 s -> 0.28 s. Inference was
    not faster, so liv.load/liv.create keep the default layout. Saved weights are contiguous either way
    (liv.checkpoints.native).
    """
    model.clip.visual.to(memory_format=torch.channels_last)


def compile_towers(model) -> None:
    """torch.compile the image tower and the text transformer in place (``nn.Module.compile``), so
    parameter names, state dicts and checkpoints stay those of the plain model. The first calls
    compile (seconds to minutes); a new text length may compile once more before shapes go dynamic."""
    model.clip.visual.compile()
    model.clip.transformer.compile()


def make_optimizer(params, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> torch.optim.Adam:
    """The reference's optimiser (torch Adam with L2 weight decay), fused: one kernel over all
    parameters instead of a Python loop of small ops per tensor (the same update up to float rounding;
    6.6x faster on clip-tiny's 8.1M parameters, 131 ms -> 20 ms, measured 2026-11-21 on the project's
    2-core x86_64 CPU machine)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=True)


def learning_rate(step: int, lr: float, steps: int, schedule: str = "constant", warmup_steps: int = 0) -> float:
    """Learning rate of the update made at ``step`` (0-based) of a ``steps``-step run -> float.

    A pure function of the step, so a resumed run continues the schedule exactly. Warm-up: linear from
    lr / warmup_steps at step 0 to lr at step warmup_steps - 1. ``cosine``: half a cosine period from lr
    at step warmup_steps towards 0 after the last step; ``constant``: lr.
    """
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        span = max(steps - warmup_steps, 1)
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))
    raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
