"""Devices: checking a device name before any work, and moving small host tensors to the model's device
without making the host wait."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported in the functions: option dataclasses name these checks without loading torch
    import torch


def device_problem(name: str) -> str | None:
    """Why torch cannot use device ``name`` in this process (None if it can): not a device name, or CUDA
    or MPS unavailable, or a CUDA index beyond the devices present. Other backends are not checked."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return f"{name!r} is not a device; use cpu, cuda, cuda:N or mps"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"{name}: CUDA is not available here (no GPU, or a torch build without CUDA); use cpu"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"{name}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return f"{name}: MPS is not available here; use cpu"
    return None


def device_or_auto_problem(name: str) -> str | None:
    """:func:`device_problem`, also accepting ``auto`` (CUDA when available, else the CPU)."""
    return None if name == "auto" else device_problem(name)


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``x`` on ``device`` (same shape and dtype; ``x`` itself when already there).

    Host -> CUDA copies are asynchronous from pinned memory: ``x`` is pinned first unless it already
    is (the data loader pins its batches; PyTorch's caching host allocator keeps a pinned block until
    its copy is done). An asynchronous copy from ordinary memory may wait for the device, and on
    other backends (MPS) it has given wrong values, so every other copy is a plain one.
    """
    import torch

    device = torch.device(device)
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)
