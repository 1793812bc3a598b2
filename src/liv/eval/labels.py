"""Names a person recognises for the models of a comparison, and folder names made from them.

A training run writes ``RUN/model`` and ``RUN/checkpoints/step_00000600``: the last path component says
nothing about which run a model is, so labels skip such generic components and take the run folder
(``runs/ft/model`` -> ``ft``; ``runs/ft/checkpoints/step_00000600`` -> ``ft/step_00000600``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

# Components that name a role, not a model: skipped when looking for the run's own name.
GENERIC_NAMES = frozenset({
    "model", "models", "final", "checkpoint", "checkpoints", "ckpt", "ckpts", "weights", "best", "last",
    "latest", "pytorch_model", "model_final", "snapshot", "snapshots", "output", "outputs", "export",
})
# A numbered checkpoint is specific only together with the run it belongs to.
_NUMBERED = re.compile(r"(step|epoch|iter|checkpoint|ckpt)[_-]?\d+", re.IGNORECASE)
_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def _meaningful_parts(spec: str | os.PathLike) -> list[str]:
    """Path components that tell models apart, deepest first (generic ones and weight suffixes dropped)."""
    parts = list(Path(os.path.abspath(spec)).parts[1:])  # absolute: "." or "model" inside a run gets its name
    if parts and parts[-1].lower().endswith(_WEIGHT_SUFFIXES):
        parts[-1] = os.path.splitext(parts[-1])[0]
    kept = [p for p in reversed(parts) if p.lower() not in GENERIC_NAMES]
    return kept or list(reversed(parts)) or [str(spec)]


def model_labels(specs: Sequence[str | os.PathLike]) -> list[str]:
    """One short distinct label per model: a preset or other name as given, a path by its run.

    A spec that is not an existing path and has no path separator (``clip-rn50``), or an ``hf://`` name,
    is a name and is its own label. A path is labelled by its last component that is not generic (``model``, ``final``,
    ``checkpoints``, ``model.pt`` ...; see ``GENERIC_NAMES``), with the folder above a numbered
    checkpoint: ``runs/ft/model`` -> ``ft``, ``runs/ft/checkpoints/step_00000600`` -> ``ft/step_00000600``,
    ``release/model.pt`` -> ``release``. Labels that collide take more of their paths (``a/ft``,
    ``b/ft``); a model given twice gets `` #2``, `` #3``.
    """
    parts: list[list[str]] = []
    depth: list[int] = []
    for spec in specs:
        text = str(spec)
        if not os.path.exists(text) and (text.startswith("hf://") or ("/" not in text and os.sep not in text)):
            parts.append([text])
            depth.append(1)
            continue
        p = _meaningful_parts(spec)
        parts.append(p)
        depth.append(2 if _NUMBERED.fullmatch(p[0]) and len(p) > 1 else 1)

    def label(i: int) -> str:
        return "/".join(reversed(parts[i][: depth[i]]))

    while True:  # lengthen colliding labels of different models until they differ or their paths run out
        groups: dict[str, list[int]] = {}
        for i in range(len(parts)):
            groups.setdefault(label(i), []).append(i)
        grow = [i for g in groups.values() if len({tuple(parts[j]) for j in g}) > 1
                for i in g if depth[i] < len(parts[i])]
        if not grow:
            break
        for i in grow:
            depth[i] += 1
    seen: dict[str, int] = {}
    out = []
    for i in range(len(parts)):
        name = label(i)
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def folder_names(labels: Sequence[str]) -> list[str]:
    """Distinct folder names for labels: characters outside [A-Za-z0-9._-] become ``_`` (``ft/step_1`` ->
    ``ft_step_1``); a clash gets ``-2``, ``-3``; never empty, never ``.`` or ``..``."""
    out: list[str] = []
    for label in labels:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_.") or "model"
        name, n = base, 1
        while name in out:
            n += 1
            name = f"{base}-{n}"
        out.append(name)
    return out


def mark_presets(labels: Sequence[str], presets: Sequence[bool]) -> list[str]:
    """Labels for tables and titles: a preset's (random weights, not a trained model) marked as such."""
    return [f"{label} (random init)" if preset else label for label, preset in zip(labels, presets)]
