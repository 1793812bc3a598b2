"""Layout choices that make training faster without changing what is computed."""

from __future__ import annotations

import torch


def prepare_for_training(model) -> None:
    """Store the image tower channels-last (in place); the tower converts its input to match.

    Measured on a 2-core CPU (fp32, fused Adam): clip-rn50 fine-tuning step at batch 8 14.4 s -> 8.8 s,
    clip-tiny at batch 32 0.35 s -> 0.28 s. Inference was not faster, so liv.load/liv.create keep the
    default layout. Saved weights are contiguous either way (liv.checkpoints.native).
    """
    model.clip.visual.to(memory_format=torch.channels_last)


def make_optimizer(params, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> torch.optim.Adam:
    """The reference's optimiser (torch Adam with L2 weight decay), fused: one kernel over all
    parameters instead of a Python loop of small ops per tensor (the same update up to float rounding;
    measured 6.6x faster on clip-tiny's 8.1M parameters: 131 ms -> 20 ms)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=True)
