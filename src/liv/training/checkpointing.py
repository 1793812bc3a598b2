"""Training checkpoints: ``RUN/checkpoints/step_00001000/`` holds a liv model (model.safetensors +
config.json, so ``liv.load`` reads any checkpoint) plus ``training_state.pt`` (optimizer, step, and
the count of bad samples so far).

A checkpoint, and the final model ``RUN/model/``, is written into a temporary directory and renamed
into place, so a run killed mid-write leaves the previous one intact and no half-written one that
could be mistaken for complete; :func:`remove_partial_checkpoints` deletes what such a kill left.
The training state is read with ``torch.load(weights_only=True)``: nothing pickled is executed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from liv.checkpoints.errors import CheckpointError
from liv.checkpoints.native import CONFIG_FILE, WEIGHTS_FILE

STATE_FILE = "training_state.pt"
RUN_CONFIG_FILE = "train_config.json"
MODEL_DIR = "model"
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


def _temporary(final: Path, suffix: str = "") -> Path:
    return final.with_name(f".{final.name}.tmp-{os.getpid()}{suffix}")


def _delete(directory: Path) -> None:
    """Delete ``directory`` under a temporary name: a kill midway leaves a temporary, which
    :func:`remove_partial_checkpoints` removes, not a half-deleted directory under its own name."""
    doomed = _temporary(directory, "-old")
    os.rename(directory, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _write_directory(final: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on an empty temporary directory next to ``final``, make it durable, then put it
    in place of ``final``."""
    tmp = _temporary(final)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    _fsync_tree(tmp)
    # Not atomic when ``final`` exists (re-saving a step after a resume; the final model): a kill between
    # the two renames leaves no ``final``, which the resumed run writes again from its checkpoint.
    doomed = _temporary(final, "-old") if final.exists() else None
    if doomed is not None:
        os.rename(final, doomed)
    os.rename(tmp, final)
    _fsync_dir(final.parent)  # make the rename itself durable
    if doomed is not None:
        shutil.rmtree(doomed, ignore_errors=True)


def save_checkpoint(run_dir: Path, step: int, model: Any, optimizer: torch.optim.Optimizer,
                    train_config: dict[str, Any], keep_last: int, bad_samples: int = 0) -> Path:
    """Write the checkpoint of ``step`` atomically and delete all but the newest ``keep_last``.

    ``model`` is a LIVModel (unwrapped); ``train_config`` is the run's config as JSON-able dict;
    ``bad_samples``: how many samples the run has left out as unreadable so far (a resume continues the
    count). Returns the checkpoint directory.
    """
    final = checkpoint_dir(run_dir, step)

    def write(tmp: Path) -> None:
        model.save(tmp)
        torch.save({"optimizer": optimizer.state_dict(), "step": step, "bad_samples": bad_samples},
                   tmp / STATE_FILE)
        (tmp / RUN_CONFIG_FILE).write_text(json.dumps(train_config, indent=2) + "\n")

    _write_directory(final, write)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        _delete(old)
    return final


def save_final_model(run_dir: Path, model: Any) -> Path:
    """Write ``model`` (a LIVModel) to ``RUN/model`` atomically, replacing any model there; returns the path."""
    final = run_dir / MODEL_DIR
    _write_directory(final, model.save)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first: ``step_*`` directories holding the model's weights and
    config and the training state (temporary and set-aside directories are not listed)."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)
             and all((p / name).is_file() for name in (STATE_FILE, WEIGHTS_FILE, CONFIG_FILE))]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(checkpoint: Path) -> int:
    """The step of a checkpoint directory listed by :func:`list_checkpoints`."""
    return int(checkpoint.name[len(_PREFIX):])


def remove_partial_checkpoints(run_dir: Path) -> list[Path]:
    """Delete the temporary directories and files left by a run killed while saving a checkpoint or the
    final model; returns what was removed."""
    root = run_dir / "checkpoints"
    partial = sorted(root.glob(f".{_PREFIX}*.tmp-*")) if root.is_dir() else []
    partial += sorted(run_dir.glob(f".{MODEL_DIR}.tmp-*"))
    # liv.checkpoints.native.atomic_write's temporaries: of logs rewritten on resume, of the run's settings,
    # and of a model that earlier versions saved in place.
    partial += sorted(run_dir.glob(".*.jsonl.*.tmp")) + sorted(run_dir.glob(f".{RUN_CONFIG_FILE}.*.tmp"))
    partial += sorted((run_dir / MODEL_DIR).glob(".*.tmp")) if (run_dir / MODEL_DIR).is_dir() else []
    for p in partial:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return partial


def load_training_state(checkpoint: Path) -> dict[str, Any]:
    """``{'optimizer': state_dict, 'step': int, 'bad_samples': int}`` of a checkpoint, read without executing
    pickled code (``bad_samples`` is 0 for checkpoints of versions that did not count them).

    Raises CheckpointError naming the file when it is missing, unreadable or not a training state.
    """
    path = checkpoint / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(path, "missing training state") from None
    except Exception as e:  # a damaged or hostile file: one clear message, nothing executed
        raise CheckpointError(path, f"cannot read training state ({str(e).splitlines()[0] if str(e) else e!r})") from None
    if not isinstance(state, dict) or "optimizer" not in state or "step" not in state:
        raise CheckpointError(path, "not a liv training state (expected keys 'optimizer' and 'step')")
    state.setdefault("bad_samples", 0)
    return state
