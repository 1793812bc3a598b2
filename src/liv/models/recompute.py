"""Activation recomputation ("gradient checkpointing") for the CLIP towers: a segment keeps only its
input for backward and runs again then, without moving BatchNorm's running statistics a second time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.utils.checkpoint
from torch import nn


@contextlib.contextmanager
def frozen_batchnorm_statistics(*modules: nn.Module) -> Iterator[None]:
    """BatchNorm layers inside ``modules`` normalise as usual (batch statistics in training) but leave
    their running statistics (momentum 0) and batch counter (restored) untouched, so recomputing a
    checkpointed segment does not update them a second time. The autograd graph is the same as in the
    first forward, as checkpointing requires."""
    layers = [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in layers]
    for m in layers:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(layers, saved):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


def run_checkpointed(segment: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     *owners: nn.Module) -> torch.Tensor:
    """``segment(x)`` keeping only its input for backward; activations are recomputed then (less memory,
    about one more forward of compute). ``owners``: the modules whose BatchNorm layers ``segment`` runs
    (default: ``segment`` itself, when it is a module)."""
    owners = owners or (segment,)  # type: ignore[assignment]
    if getattr(torch.compiler, "is_compiling", lambda: False)():  # torch < 2.3 lacks it (and its tracing)
        # torch.compile cannot trace the context_fn; nor does it need it: the compiled forward applies
        # BatchNorm's running-statistics updates once and the backward recomputes activations only
        # (checked: buffers and gradients agree with eager, tests/training/test_speed_settings.py).
        return torch.utils.checkpoint.checkpoint(segment, x, use_reentrant=False)
    return torch.utils.checkpoint.checkpoint(
        segment, x, use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), frozen_batchnorm_statistics(*owners)))
