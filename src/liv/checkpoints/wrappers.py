"""Find CLIP weights inside the wrappers other tools put around a state dict.

Two kinds of wrapper, both undone here without looking at the tensors:

* key prefixes, from modules that hold the CLIP model: ``module.`` (DataParallel, DDP,
  DeepSpeed, open_clip's DDP-saved checkpoints), ``model.`` (the reference LIV's ``self.model``, a
  Lightning module's ``self.model``) and ``clip.`` (liv's own :class:`~liv.model.LIVModel`, so
  ``torch.save(model.state_dict())`` loads). They are peeled in any order and combination, each
  only while every key starts with it, so a real parameter name is never cut. ``_orig_mod``
  (``torch.compile``, around the whole model or inside DDP, or around a submodule:
  ``visual._orig_mod.conv1.weight``) is dropped wherever it is a component of a key: it is the
  attribute through which ``torch.compile``'s wrapper holds the original module, never part of
  a CLIP parameter name.
* nesting: training checkpoints keep the state dict under a key, next to an epoch count,
  optimizer state and so on (open_clip and Lightning: ``state_dict``; the reference LIV:
  ``liv``; PyTorch's tutorial: ``model_state_dict``; many training scripts: ``model``;
  DeepSpeed: ``module``). Every dict in the file down to :data:`MAX_DEPTH` levels is looked at,
  whatever its key, and those whose keys (once peeled) are CLIP's are the candidates. One
  candidate is taken. With several, only those reached through :data:`NESTING_KEYS` alone count:
  that takes ``state_dict`` over ``state_dict_ema`` or ``model_ema`` (the raw weights, as
  timm and open_clip load by default). If that still leaves more than one, nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

WRAPPER_PREFIXES = ("module.", "model.", "clip.")
COMPILE_WRAPPER = "_orig_mod"
NESTING_KEYS = ("state_dict", "model_state_dict", "model", "module", "liv")
MAX_DEPTH = 4

# Present in every OpenAI CLIP state dict, whether the image tower is a ResNet or a ViT.
REQUIRED_KEYS = ("positional_embedding", "text_projection", "logit_scale", "token_embedding.weight")
REQUIRED_PREFIXES = ("visual.", "transformer.")


@dataclass(frozen=True)
class Found:
    """Where the weights are: ``location`` is the keys leading to ``weights`` (``()``: the top)."""

    weights: Mapping
    location: tuple[str, ...]


class AmbiguousWeights(LookupError):
    """More than one dict in the file holds CLIP weights; ``locations`` lists them all."""

    def __init__(self, locations: list[tuple[str, ...]]):
        self.locations = locations
        super().__init__(", ".join(describe(loc) for loc in locations))


def describe(location: tuple[Any, ...]) -> str:
    """``('state_dict', 'model')`` -> ``['state_dict']['model']``; ``()`` -> ``the top level``."""
    return "".join(f"[{k!r}]" for k in location) or "the top level"


def plain_keys(keys: list[str]) -> list[str]:
    """``keys`` without their wrapper prefixes and compile segments (same order, same length)."""
    keys = [".".join(part for part in k.split(".") if part != COMPILE_WRAPPER) if COMPILE_WRAPPER in k else k
            for k in keys]
    while True:
        prefix = next((w for w in WRAPPER_PREFIXES if keys and all(k.startswith(w) for k in keys)), None)
        if prefix is None:
            return keys
        keys = [k[len(prefix):] for k in keys]


def missing_clip_keys(keys: list[str]) -> list[str]:
    """CLIP keys (and ``prefix*`` families) absent from ``keys``, which are already plain."""
    present = set(keys)
    missing = [k for k in REQUIRED_KEYS if k not in present]
    return missing + [f"{w}*" for w in REQUIRED_PREFIXES if not any(k.startswith(w) for k in keys)]


def _looks_like_clip(m: Mapping) -> bool:
    keys = [k for k in m if isinstance(k, str)]
    return bool(keys) and not missing_clip_keys(plain_keys(keys))


def find_clip_weights(obj: Mapping) -> Found | None:
    """The dict in ``obj`` (``obj`` itself or one nested in it) that holds CLIP weights.

    Returns None when there is none. Raises :class:`AmbiguousWeights` when several are equally
    plausible (see the module docstring for the rule).
    """
    found: list[Found] = []
    seen: set[int] = set()  # the same dict pickled under two keys is one candidate, not two

    def visit(m: Mapping, location: tuple[str, ...]) -> None:
        if id(m) in seen:
            return
        seen.add(id(m))
        if _looks_like_clip(m):
            found.append(Found(m, location))
            return
        if len(location) < MAX_DEPTH:  # also ends a pickle whose dicts contain themselves
            for key, value in m.items():
                if isinstance(value, Mapping):
                    visit(value, (*location, key))

    visit(obj, ())
    if len(found) > 1:
        preferred = [f for f in found if all(k in NESTING_KEYS for k in f.location)]
        if len(preferred) != 1:
            raise AmbiguousWeights([f.location for f in found])
        found = preferred
    return found[0] if found else None


def best_guess(obj: Mapping) -> Found:
    """The dict with the most tensors, for an error message when none holds CLIP weights."""
    best = Found(obj, ())
    best_count = sum(_is_tensor(v) for v in obj.values())
    stack: list[Found] = [best]
    seen: set[int] = set()
    while stack:
        here = stack.pop(0)
        if id(here.weights) in seen or len(here.location) > MAX_DEPTH:
            continue
        seen.add(id(here.weights))
        count = sum(_is_tensor(v) for v in here.weights.values())
        if count > best_count:
            best, best_count = here, count
        stack.extend(Found(v, (*here.location, k)) for k, v in here.weights.items() if isinstance(v, Mapping))
    return best


def _is_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)
