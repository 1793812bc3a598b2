"""Moving small host tensors to the model's device without making the host wait."""

from __future__ import annotations

import torch


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``x`` on ``device`` (same shape and dtype; ``x`` itself when already there).

    Host -> CUDA copies are asynchronous from pinned memory: ``x`` is pinned first unless it already
    is (the data loader pins its batches; PyTorch's caching host allocator keeps a pinned block until
    its copy is done). An asynchronous copy from ordinary memory may wait for the device, and on
    other backends (MPS) it has given wrong values, so every other copy is a plain one.
    """
    device = torch.device(device)
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)
