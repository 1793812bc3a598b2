"""Find CLIP weights inside the wrappers other tools put around a state dict.

Two kinds of wrapper, both undone by the keys alone (tensors are compared only to tell a stray
CLIP key from a second name for the same weights, below):

* key prefixes, from the modules that hold the CLIP model: ``module.`` (DataParallel, DDP,
  DeepSpeed, SWA's ``AveragedModel``), ``model.`` (the reference LIV, a Lightning module's
  ``self.model``), ``clip.`` (liv's own :class:`~liv.model.LIVModel`) or any other attribute
  name (``backbone.``, ``clip_model.``, ``policy.encoder.``), nested to any depth. First
  ``_orig_mod`` is dropped wherever it is a component of a key (``torch.compile``'s wrapper holds
  the original module under that attribute, around the whole model, inside DDP or around a
  submodule: ``visual._orig_mod.conv1.weight``; it is never part of a CLIP parameter name).
  Then the CLIP *root* is found rather than peeled by a list of names: every key ending in one
  of :data:`REQUIRED_KEYS` gives a candidate prefix P (what comes before that name), and P is a
  root when all of CLIP's required keys and both towers are under it. The weights are the keys
  under P with P taken off. A root is where a whole CLIP model starts, and no CLIP parameter
  name holds a whole CLIP model, so a real parameter name is never cut. (A root under another
  root, such as an EMA copy the model holds, keeps its keys to itself.)
* nesting: training checkpoints keep the state dict under a key, next to an epoch count,
  optimizer state and so on (open_clip and Lightning: ``state_dict``; the reference LIV:
  ``liv``; PyTorch's tutorial: ``model_state_dict``; many training scripts: ``model``;
  DeepSpeed: ``module``). Every dict in the file down to :data:`MAX_DEPTH` levels is looked at,
  whatever its key, for roots as above.

One root in the file is taken. With several, the raw weights are preferred, as timm and
open_clip load them by default, and a key prefix counts exactly as a nesting level would (the
*path* of a root is its dict keys, then the components of its prefix): ``model.*`` next to
``model_ema.*`` in one dict is treated like ``{'model': ..., 'model_ema': ...}``. First, a root
whose path has an EMA name (``ema``, ``*_ema``, ``ema_*``: ``state_dict_ema``, ``model_ema``,
``ema_model``) loses to any without one. Then, if several are left, one whose path consists of
:data:`HOLDER_NAMES` alone wins (``state_dict`` over ``best``). If that still leaves more than
one, nothing is guessed.

Keys next to the chosen root that are under no root (SWA's ``n_averaged``, a loss module's
``criterion.weight``) are ignored, unless one ends in a CLIP name of the root
(``positional_embedding`` next to ``module.positional_embedding``, a tower under another
prefix, a loss's own ``logit_scale``): that is a half-wrapped or merged file, or a second
parameter the model may have trained with, and it is refused, naming both, rather than dropped.
Such a key holding the very values of that CLIP key is a submodule the model also exposes under
a second name (``self.visual = clip.visual``) and is ignored.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

COMPILE_WRAPPER = "_orig_mod"
# The names under which tools keep the model, as a dict key or as an attribute (key prefix).
HOLDER_NAMES = ("state_dict", "model_state_dict", "model", "module", "liv", "clip")
MAX_DEPTH = 4

# Present in every OpenAI CLIP state dict, whether the image tower is a ResNet or a ViT.
REQUIRED_KEYS = ("positional_embedding", "text_projection", "logit_scale", "token_embedding.weight")
REQUIRED_PREFIXES = ("visual.", "transformer.")

_EMA_NAME = re.compile(r"(^|_)ema($|_)")


@dataclass(frozen=True)
class Found:
    """CLIP weights, or the closest thing to them, in a file.

    ``weights`` is the dict holding them, ``location`` the keys leading to it (``()``: the top),
    ``prefix`` what comes before the CLIP names in its keys once ``_orig_mod`` components are
    dropped (``""``: nothing). ``names`` pairs each CLIP name with its key in ``weights``, in
    the dict's order (a name appears twice when two keys differ only in ``_orig_mod``).
    ``missing`` lists the required CLIP keys absent under ``prefix`` (empty for weights that
    :func:`find_clip_weights` found).
    """

    weights: Mapping
    location: tuple[str, ...]
    prefix: str = ""
    names: tuple[tuple[str, str], ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def path(self) -> tuple[Any, ...]:
        """The dict keys, then the prefix's components: what the preference rule looks at."""
        return (*self.location, *self.prefix.split(".")[:-1])

    def describe(self) -> str:
        """``['state_dict'] keys 'model.*'``; without a prefix as :func:`describe`."""
        if not self.prefix:
            return describe(self.location)
        return " ".join(([describe(self.location)] if self.location else []) + [f"keys {self.prefix + '*'!r}"])


class AmbiguousWeights(LookupError):
    """The file holds CLIP weights in more than one place; the message says where and why
    nothing was chosen (it reads after "<file>: ")."""


def describe(location: tuple[Any, ...]) -> str:
    """``('state_dict', 'model')`` -> ``['state_dict']['model']``; ``()`` -> ``the top level``."""
    return "".join(f"[{k!r}]" for k in location) or "the top level"


def find_clip_weights(obj: Mapping) -> Found | None:
    """The CLIP weights in ``obj`` (``obj`` itself or a dict nested in it, under some prefix).

    Returns None when there are none. Raises :class:`AmbiguousWeights` when several roots are
    equally plausible, or when CLIP keys lie outside the chosen root (see the module docstring).
    """
    found = [f for m, location in _dicts(obj) for f in _roots(m, location)]
    if len(found) <= 1:
        chosen = found[0] if found else None
    else:
        raw = [f for f in found if not any(_is_ema(c) for c in f.path)] or found
        if len(raw) > 1:
            raw = [f for f in raw if all(c in HOLDER_NAMES for c in f.path)]
        if len(raw) != 1:
            shown = ", ".join(f.describe() for f in found[:6]) + (f" (+{len(found) - 6} more)" if len(found) > 6 else "")
            raise AmbiguousWeights(f"holds several CLIP state dicts, under {shown}, "
                                   "and liv cannot tell which one to load; save the one you want on its own")
        chosen = raw[0]
    if chosen is not None:
        _refuse_stray_clip_keys(chosen, [f.prefix for f in found if f.weights is chosen.weights])
    return chosen


def best_guess(obj: Mapping) -> Found:
    """Where the file comes closest to CLIP weights, for the message when it holds none: the
    dict and prefix with the fewest missing CLIP keys, then the dict with the most tensors."""
    best, best_rank = None, None
    for m, location in _dicts(obj):
        _, missing = _scan(m)
        prefix = min(missing, key=lambda p: (len(missing[p]), p))
        rank = (len(missing[prefix]), -sum(isinstance(v, torch.Tensor) for v in m.values()))
        if best_rank is None or rank < best_rank:
            best, best_rank = Found(m, location, prefix, missing=tuple(missing[prefix])), rank
    assert best is not None  # _dicts yields obj itself first
    return best


def _dicts(obj: Mapping) -> Iterator[tuple[Mapping, tuple[str, ...]]]:
    """``obj`` and the dicts nested in it down to :data:`MAX_DEPTH`, each once, top first."""
    seen: set[int] = set()  # the same dict pickled under two keys is looked at once, not twice
    queue: deque[tuple[Mapping, tuple[str, ...]]] = deque([(obj, ())])
    while queue:
        m, location = queue.popleft()
        if id(m) in seen:
            continue
        seen.add(id(m))
        yield m, location
        if len(location) < MAX_DEPTH:  # also ends a pickle whose dicts contain themselves
            queue.extend((v, (*location, k)) for k, v in m.items() if isinstance(v, Mapping))


def _plain(key: str) -> str:
    if COMPILE_WRAPPER not in key:
        return key
    return ".".join(part for part in key.split(".") if part != COMPILE_WRAPPER)


def _dot_prefixes(name: str) -> Iterator[str]:
    """``"a.b.c"`` -> ``""``, ``"a."``, ``"a.b."``: every place a root could start."""
    yield ""
    for i, ch in enumerate(name):
        if ch == ".":
            yield name[: i + 1]


def _scan(m: Mapping) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The plain form of each string key of ``m``, and for each candidate prefix (``""`` and
    whatever precedes a required key's name) the CLIP keys missing under it."""
    plain = {k: _plain(k) for k in m if isinstance(k, str)}
    present = dict.fromkeys(plain.values())  # a set that keeps the file's order, for the messages
    towers: dict[str, set[str]] = {t: set() for t in REQUIRED_PREFIXES}  # prefixes with that tower under them
    prefixes = {"": None}
    for name in present:  # linear in the keys' length, even for a file built to have many prefixes
        for p in _dot_prefixes(name):
            for t in REQUIRED_PREFIXES:
                if name.startswith(t, len(p)):
                    towers[t].add(p)
        prefixes.update((name[: -len(r)], None) for r in REQUIRED_KEYS if name == r or name.endswith("." + r))
    missing = {p: [p + r for r in REQUIRED_KEYS if p + r not in present]
               + [p + t + "*" for t in REQUIRED_PREFIXES if p not in towers[t]] for p in prefixes}
    return plain, missing


def _roots(m: Mapping, location: tuple[str, ...]) -> list[Found]:
    plain, missing = _scan(m)
    roots = {p: [] for p, miss in missing.items() if not miss}
    for key, name in plain.items():
        # A root inside another (an EMA copy held by the model) keeps its keys to itself.
        p = max((p for p in _dot_prefixes(name) if p in roots), key=len, default=None)
        if p is not None:
            roots[p].append((name[len(p):], key))
    return [Found(m, location, p, tuple(names)) for p, names in roots.items()]


def _refuse_stray_clip_keys(chosen: Found, roots: list[str]) -> None:
    keys = dict(chosen.names)  # CLIP name -> its key in the dict
    stray = []
    for key in chosen.weights:
        if not isinstance(key, str):
            continue
        name = _plain(key)
        starts = list(_dot_prefixes(name))
        if any(p in roots for p in starts):
            continue  # under the chosen root, or under another that lost to it
        # The longest CLIP name the key ends with: "x.visual.attnpool.positional_embedding" is that
        # parameter under "x.", not the text tower's "positional_embedding".
        clip_name = next((name[len(p):] for p in starts if name[len(p):] in keys), None)
        if clip_name is not None and not _same(chosen.weights[key], chosen.weights[keys[clip_name]]):
            stray.append(key)
    if stray:
        shown = ", ".join(repr(k) for k in stray[:5]) + (f" (+{len(stray) - 5} more)" if len(stray) > 5 else "")
        raise AmbiguousWeights(f"holds CLIP weights under {chosen.describe()} and CLIP keys outside them: {shown}; "
                               "liv cannot tell which belong to the model, so save the weights you want on their own")


def _same(a: Any, b: Any) -> bool:
    # A submodule the model also exposes under a second name (``self.visual = clip.visual``) is
    # saved twice with the same values: nothing to choose between.
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
            and a.shape == b.shape and torch.equal(a, b))


def _is_ema(component: Any) -> bool:
    return isinstance(component, str) and _EMA_NAME.search(component) is not None
