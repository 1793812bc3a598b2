"""Noticing a non-finite loss without a device synchronisation every step, and setting aside the
checkpoint it spoiled.

Reading a loss back from a GPU (``if not torch.isfinite(loss)``) makes the host wait for the device,
so the host cannot queue the next step's work ahead. :class:`NonFiniteWatch` keeps the first bad
step in a device tensor and reads it only when the loop reads values back anyway (logging) or must
know (before a checkpoint, an evaluation, the end). On the CPU reading is free, so it checks every step.
"""

from __future__ import annotations

from pathlib import Path

import torch

from liv.training.checkpointing import checkpoint_dir, list_checkpoints


class NonFiniteWatch:
    """Remembers, on ``device``, the first step whose loss was not finite.

    ``every_step``: read back after every step (the default on CPU); otherwise :meth:`first_bad`
    reads only when the caller passes ``read=True``.
    """

    def __init__(self, device: torch.device, every_step: bool | None = None):
        self.every_step = device.type == "cpu" if every_step is None else every_step
        self._first_bad = torch.full((), -1, dtype=torch.long, device=device)

    def update(self, loss: torch.Tensor, step: int) -> None:
        """Record ``step`` (0-based) if ``loss`` (0-dim) is not finite and no earlier step was; no sync."""
        keep = torch.isfinite(loss.detach()) | (self._first_bad >= 0)
        self._first_bad = torch.where(keep, self._first_bad, step)

    def first_bad(self, read: bool) -> int | None:
        """The first non-finite step seen so far, or None. Reads the device only when ``read`` or
        ``every_step``; returns None without reading otherwise."""
        if not (read or self.every_step):
            return None
        step = int(self._first_bad)
        return step if step >= 0 else None


def must_read_back(step: int, steps: int, log_every: int, save_every: int, eval_every: int) -> bool:
    """Whether the loop, after the update of ``step`` (0-based), logs, saves, evaluates or stops: the
    points where a diverged run must be noticed before anything is written or reported."""
    done = step + 1
    return (done == steps or done % log_every == 0 or bool(save_every and done % save_every == 0)
            or bool(eval_every and done % eval_every == 0))


def describe_divergence(run_dir: Path, bad_step: int, step: int, metrics: dict[str, torch.Tensor]) -> str:
    """Set aside a checkpoint holding the weights that produced the non-finite loss of ``bad_step``;
    return the message saying what happened and what is kept. ``step``: where it was noticed."""
    kept = list_checkpoints(run_dir)
    note = ""
    if kept and kept[-1] == checkpoint_dir(run_dir, bad_step):  # saved after the update that broke the weights
        bad = kept.pop()
        bad.rename(bad.with_name(bad.name + ".diverged"))
        note = f" The checkpoint of this step was renamed to {bad.name}.diverged."
    terms = ", ".join(f"{k} {v.item():.6g}" for k, v in metrics.items())
    where = f"({terms})" if step == bad_step else f"(noticed at step {step}: {terms})"
    return (f"step {bad_step}: loss is not finite {where}; training stopped.{note} Last good "
            f"checkpoint: {kept[-1] if kept else 'none'} (lower --lr or check the data, then --resume).")
