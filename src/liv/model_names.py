"""What a model may be called, in one place: every ``--model`` option, ``liv train --init`` and ``liv.load``
accept the same names.

A name is, in this order:

1. a local file or folder (any format ``liv.load`` reads): a path that exists always wins, so a folder
   that happens to be called ``clip-tiny`` is that folder;
2. a preset (``clip-tiny``, ``clip-small``, ``clip-rn50``): a new model with random weights from the preset's
   architecture (seeded; see ``liv.load``).

:func:`model_name_problem` is cheap (no download, no file read) and serves as the command line's
``"check"``; :func:`resolve_model` says what a name stands for. Nothing here imports torch at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSource:
    """What a model name stands for: exactly one of ``path`` (a local file or folder) and ``preset``."""

    name: str
    """The name as given."""
    path: Path | None = None
    """Local file or folder to read."""
    preset: str | None = None
    """Preset whose architecture gets random weights."""

    @property
    def label(self) -> str:
        """A short name for tables and legends: a file's or folder's name (the whole path for a bare
        ``model.pt``), or the preset's name marked as random weights."""
        if self.preset is not None:
            return f"{self.preset} (random init)"
        assert self.path is not None
        return self.path.name if self.path.name not in ("model.pt", "") else str(self.path)


def _preset_names() -> list[str]:
    from liv.models.presets import PRESETS  # imports torch: only for a name that is not a path

    return list(PRESETS)


def known_names() -> str:
    """The names a model may have besides a path, for messages: ``"presets clip-rn50, ... (random weights)"``."""
    return f"presets {', '.join(_preset_names())} (random weights)"


def _unknown(name: str) -> str:
    return f"{name}: no such file or folder, and not a model name; names are {known_names()}"


def is_model_name(name: str | os.PathLike) -> bool:
    """True when ``name`` is a model name rather than a path (a path that exists is never a name)."""
    text = os.fspath(name)
    return not os.path.exists(text) and text in _preset_names()


def model_name_problem(name: str | os.PathLike) -> str | None:
    """What keeps ``name`` from naming a model, or None; reads no file and downloads nothing.

    Phrased to follow an option's name: ``"x: no such file or folder, and not a model name; ..."``.
    """
    text = os.fspath(name)
    if not text.strip():
        return f"must not be empty, got {text!r}"
    if os.path.exists(text) or is_model_name(text):
        return None
    return _unknown(text)


def resolve_model(name: str | os.PathLike) -> ModelSource:
    """What ``name`` stands for (see the module docstring for the order).

    Raises CheckpointError (a ValueError) naming ``name`` when it is neither an existing path nor a name.
    """
    from liv.checkpoints.errors import CheckpointError

    text = os.fspath(name)
    if text.strip() and os.path.exists(text):
        return ModelSource(text, path=Path(text))
    if is_model_name(text):
        return ModelSource(text, preset=text)
    raise CheckpointError(text, _unknown(text).removeprefix(f"{text}: "))


__all__ = ["ModelSource", "is_model_name", "known_names", "model_name_problem", "resolve_model"]
