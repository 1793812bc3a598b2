"""Training checkpoints: ``RUN/checkpoints/step_00001000/`` holds a liv model (model.safetensors +
config.json, so ``liv.load`` reads any checkpoint) plus ``training_state.pt`` (optimizer, step).

A checkpoint is written into a temporary directory and renamed into place, so a run killed mid-write
leaves the previous checkpoint intact and no half-written one that could be mistaken for complete.
The training state is read with ``torch.load(weights_only=True)``: nothing pickled is executed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from liv.checkpoints.errors import CheckpointError

STATE_FILE = "training_state.pt"
RUN_CONFIG_FILE = "train_config.json"
_PREFIX = "step_"
_NAME = re.compile(r"step_\d{8}")  # set-aside (".diverged") and temporary directories do not match


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    """Directory of the checkpoint taken after ``step`` optimiser steps."""
    return run_dir / "checkpoints" / f"{_PREFIX}{step:08d}"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(directory)


def save_checkpoint(run_dir: Path, step: int, model: Any, optimizer: torch.optim.Optimizer,
                    train_config: dict[str, Any], keep_last: int) -> Path:
    """Write the checkpoint of ``step`` atomically and delete all but the newest ``keep_last``.

    ``model`` is a LIVModel (unwrapped); ``train_config`` is the run's config as JSON-able dict.
    Returns the checkpoint directory.
    """
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, tmp / STATE_FILE)
    (tmp / RUN_CONFIG_FILE).write_text(json.dumps(train_config, indent=2) + "\n")
    _fsync_tree(tmp)
    if final.exists():  # re-saving a step (e.g. after a resume): replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(final.parent)  # make the rename itself durable
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary directories are not listed)."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX):]))


def remove_partial_checkpoints(run_dir: Path) -> list[Path]:
    """Delete temporary directories left by a run killed while saving; returns what was removed."""
    root = run_dir / "checkpoints"
    partial = [p for p in root.glob(f".{_PREFIX}*.tmp-*")] if root.is_dir() else []
    for p in partial:
        shutil.rmtree(p, ignore_errors=True)
    return partial


def load_training_state(checkpoint: Path) -> dict[str, Any]:
    """``{'optimizer': state_dict, 'step': int}`` of a checkpoint, read without executing pickled code."""
    path = checkpoint / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(path, "missing training state") from None
    except Exception as e:  # a damaged or hostile file: one clear message, nothing executed
        raise CheckpointError(path, f"cannot read training state ({str(e).splitlines()[0] if str(e) else e!r})") from None
    if not isinstance(state, dict) or "optimizer" not in state or "step" not in state:
        raise CheckpointError(path, "not a liv training state (expected keys 'optimizer' and 'step')")
    return state
