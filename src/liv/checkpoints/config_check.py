"""Checks of a liv model's ``config.json``, and of its weights against it, before any tensor is made.

Every failure is a :class:`CheckpointError` of one line naming the file and the field. Field types are
read from the dataclasses' declarations (:class:`CLIPConfig`, :class:`liv.model.ModelConfig`) and
ranges come from ``CLIPConfig``'s own checks, so the file format and the code cannot drift apart.

What is accepted:

- Unknown fields are refused, with the closest known name, everywhere except inside ``provenance``
  (free-form notes). Every other field says what the model computes, so ignoring one could silently
  change its numbers: a misspelt ``"antialais": false`` would leave antialiasing on. A liv that adds a
  field also raises the format version, so older versions answer "upgrade liv", not "unknown field".
- Missing fields take the dataclasses' defaults (``clip.vision_heads``: OpenAI's rule,
  ``preprocess.antialias``: true, ``preset``: null, no provenance, ``format_version``: 1). A default
  architecture size that does not fit the weights is caught by :func:`check_weights`, whose message
  says that the field was missing. ``format`` and ``clip`` are required.
- ``preset`` is informational: any string or null (presets may be added or changed by later versions;
  the architecture is in ``clip``).
- Head counts are not visible in the weights; they are checked only to divide their widths.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from liv.checkpoints.errors import CheckpointError
from liv.models.clip_config import CLIPConfig
from liv.models.clip_shapes import clip_tensor_shapes

if TYPE_CHECKING:
    from liv.model import ModelConfig

_TOP_LEVEL = ("format", "format_version", "liv_version", "preset", "clip", "preprocess", "provenance")
"""The fields :func:`liv.checkpoints.native.config_to_json` writes."""

# One tensor per architecture size, ordered so that each tensor's shape depends only on its own field and
# the fields before it: the first tensor that differs names the field that is wrong.
_EVIDENCE = (("transformer_width", "ln_final.weight"), ("embed_dim", "text_projection"),
             ("vocab_size", "token_embedding.weight"), ("context_length", "positional_embedding"),
             ("vision_width", "visual.bn3.weight"), ("image_resolution", "visual.attnpool.positional_embedding"))


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: Any) -> str:
    """A value as JSON, short and on one line (ensure_ascii escapes line breaks and the like)."""
    return _cut(json.dumps(value, ensure_ascii=True))


def _describe(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(option) for option in get_args(tp))
    if get_origin(tp) is tuple:
        return f"a list of {len(get_args(tp))} integers" if set(get_args(tp)) == {int} else "a list"
    return {int: "an integer", bool: "true or false", str: "a string", type(None): "null"}.get(
        tp, "a JSON object" if get_origin(tp) is dict else str(tp))


def _typed(value: Any, tp: Any, where: str, path: Path) -> Any:
    """``value`` checked against the declared type ``tp``; a JSON list becomes a tuple where ``tp`` is one."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _typed(value, option, where, path)
            except CheckpointError:
                continue
        ok = False
    elif origin is tuple:
        if isinstance(value, list) and len(value) == len(args) and Ellipsis not in args:
            return tuple(_typed(v, t, f"{where}[{i}]", path) for i, (v, t) in enumerate(zip(value, args)))
        ok = False
    elif origin is dict:
        ok = isinstance(value, dict)  # JSON keys are strings; the values of liv's dict fields are free-form
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a size
    elif tp in (bool, str, type(None)):
        ok = isinstance(value, tp)
    else:  # a field of a type this module has no rule for: a new field needs one here
        raise TypeError(f"no config.json rule for {where}: {tp!r}")
    if not ok:
        raise CheckpointError(path, f"{where} must be {_describe(tp)}, got {_show(value)}")
    return value


def _object(value: Any, where: str, path: Path, known: Iterable[str]) -> dict[str, Any]:
    """A JSON object with only ``known`` fields (the first other one is refused, with a suggestion)."""
    if not isinstance(value, dict):
        raise CheckpointError(path, f"{where or 'the document'} must be a JSON object, got {_show(value)}")
    known = list(known)
    prefix = f"{where}." if where else ""
    for key in value:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {prefix}{close[0]}?" if close else f"known: {', '.join(known)}"
            raise CheckpointError(path, f"unknown field {prefix}{_cut(key) if key.isidentifier() else _show(key)} "
                                        f"({hint})")
    return value


def parse_model_config(doc: Any, path: Path) -> tuple[ModelConfig, frozenset[str]]:
    """A parsed ``config.json`` document -> (its ModelConfig, the ``clip`` fields it left to their defaults).

    Raises CheckpointError naming ``path`` and the field: not a liv config, a newer format version, a
    field of the wrong type, out of range or unknown, a missing required field (see the module's notes).
    """
    from liv.checkpoints.native import FORMAT_NAME, FORMAT_VERSION
    from liv.model import ModelConfig

    if not isinstance(doc, dict):
        raise CheckpointError(path, f"not a liv model config (the document is {_show(doc)}, not a JSON object)")
    if doc.get("format") != FORMAT_NAME:
        found = _show(doc["format"]) if "format" in doc else "missing"
        raise CheckpointError(path, f"not a liv model config (format: {found}, expected \"{FORMAT_NAME}\")")
    version = _typed(doc.get("format_version", 1), int, "format_version", path)
    if version < 1:
        raise CheckpointError(path, f"format_version must be at least 1, got {version}")
    if version > FORMAT_VERSION:  # before the field checks: a newer format may have fields this liv lacks
        raise CheckpointError(path, f"format version {version} is newer than this liv (reads up to "
                                    f"{FORMAT_VERSION}); upgrade liv")
    _object(doc, "", path, _TOP_LEVEL)
    if "liv_version" in doc:
        _typed(doc["liv_version"], str, "liv_version", path)
    hints = get_type_hints(ModelConfig)
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    if "clip" not in doc:
        raise CheckpointError(path, "missing field clip (the architecture)")
    clip, defaulted = _clip_config(doc["clip"], path)
    preprocess = _object(doc.get("preprocess", {}), "preprocess", path, ["antialias"])
    return ModelConfig(
        clip=clip,
        preset=_typed(doc.get("preset", defaults["preset"]), hints["preset"], "preset", path),
        antialias=_typed(preprocess.get("antialias", defaults["antialias"]), hints["antialias"],
                         "preprocess.antialias", path),
        provenance=dict(_typed(doc.get("provenance", {}), hints["provenance"], "provenance", path)),
    ), defaulted


def _clip_config(section: Any, path: Path) -> tuple[CLIPConfig, frozenset[str]]:
    names = [f.name for f in dataclasses.fields(CLIPConfig)]
    section = _object(section, "clip", path, names)
    hints = get_type_hints(CLIPConfig)
    values = {name: _typed(section[name], hints[name], f"clip.{name}", path) for name in names if name in section}
    try:
        config = CLIPConfig(**values)
    except ValueError as e:  # CLIPConfig's messages start with the field's name
        raise CheckpointError(path, f"clip.{e}") from None
    return config, frozenset(names) - frozenset(section)


def _count_blocks(shapes: Iterable[str], prefix: str) -> int:
    return len({key[len(prefix):].partition(".")[0] for key in shapes if key.startswith(prefix)})


def describe_mismatch(expected: Mapping[str, Sequence[int]], actual: Mapping[str, Sequence[int]]) -> str | None:
    """How tensor shapes ``actual`` (key -> shape) differ from ``expected``, in one line; None if they agree."""
    def few(items: list[str]) -> str:
        more = f", ... ({len(items)} in all)" if len(items) > 5 else ""
        return f"[{', '.join(_cut(i, 100) for i in items[:5])}{more}]"

    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    wrong = sorted(k for k in set(expected) & set(actual) if tuple(actual[k]) != tuple(expected[k]))
    parts = [f"{label} {few(keys)}" for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
             ("wrong shapes", [f"{k} {list(actual[k])} (expected {list(expected[k])})" for k in wrong])) if keys]
    return "; ".join(parts) or None


def check_weights(clip: CLIPConfig, shapes: Mapping[str, Sequence[int]], config_path: Path, weights_path: Path,
                  defaulted: frozenset[str] = frozenset()) -> None:
    """Check that ``shapes`` (key -> shape, from the safetensors header) are exactly the tensors of
    ``CLIP(clip)``, without building it: after this, the model is no larger than the weights file.

    Raises CheckpointError naming ``config_path`` and the field whose size the weights contradict, or
    naming ``weights_path`` for tensors missing, extra or of another shape.
    """
    def contradicted(field: str, value: Any, found: str) -> CheckpointError:
        missing = " (the default; the field is missing)" if field in defaulted else ""
        shown = _cut(str(value))
        return CheckpointError(config_path, f"clip.{field} is {shown}{missing}, but {weights_path.name} {found}")

    # Block counts first: they bound the work of listing the expected tensors (a config may claim 10**9).
    stages = [_count_blocks(shapes, f"visual.layer{s}.") for s in (1, 2, 3, 4)]
    if tuple(stages) != clip.vision_layers:
        raise contradicted("vision_layers", list(clip.vision_layers), f"has {stages} blocks (visual.layerS.N)")
    text_blocks = _count_blocks(shapes, "transformer.resblocks.")
    if text_blocks != clip.transformer_layers:
        raise contradicted("transformer_layers", clip.transformer_layers,
                           f"has {text_blocks} blocks (transformer.resblocks.N)")
    expected = clip_tensor_shapes(clip)
    for field, key in _EVIDENCE:
        if key in shapes and tuple(shapes[key]) != expected[key]:
            found, implied = _cut(str(list(shapes[key]))), _cut(str(list(expected[key])))
            raise contradicted(field, getattr(clip, field), f"has {key} of shape {found}, where config.json "
                                                            f"implies {implied}")
    problem = describe_mismatch(expected, shapes)
    if problem:
        raise CheckpointError(weights_path, f"tensors do not fit the architecture in config.json: {problem}")
