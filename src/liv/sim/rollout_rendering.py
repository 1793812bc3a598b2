"""Which camera and frame size rollouts render (`liv bc`, `liv plan`), and what to tell the user about it.

A model's embeddings mean something only on frames like those it learned from, so rollouts render as
the dataset was (a policy learns from those frames) or as the models were trained (their provenance's
"rendering" record), unless the user says otherwise; each mismatch is one warning line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from liv.model import LIVModel
    from liv.sim.suite import Suite


@dataclass(frozen=True)
class Rendering:
    """Camera and frame size of rollouts, where they came from, and what to tell the user about them."""

    camera: str
    size: tuple[int, int]
    """(height, width) in pixels."""
    notes: tuple[str, ...] = ()
    """Lines for stdout: which settings were taken from a model's provenance."""
    warnings: tuple[str, ...] = ()
    """Lines for stderr: models whose training frames were rendered otherwise (one line per model)."""


def _simulator(rendering: dict[str, Any]) -> str:
    # Records written before the kitchen suite existed name no simulator, or Meta-World.
    return str(rendering.get("simulator") or "metaworld")


def _trained_on(rendering: dict[str, Any], suite: str) -> str:
    """The frames of a rendering record in words; the simulator is named when it is not ``suite``."""
    stride = rendering.get("record_every")
    h, w = rendering["size"]
    other = "" if _simulator(rendering) == suite else f"{_simulator(rendering)} "
    every = f", one frame every {stride} steps" if stride else ""
    return f"{other}camera {rendering['camera']} at {h}x{w} px{every}"


def resolve_rendering(command: str, camera: str | None, size: Sequence[int] | None,
                      models: Sequence[tuple[str, dict[str, Any] | None]], data: dict[str, Any] | None = None,
                      default_size: tuple[int, int] = (64, 64), suite: Suite | None = None) -> Rendering:
    """Choose the rollouts' camera and (height, width) in ``suite`` (default: Meta-World) -> :class:`Rendering`.

    Each setting is, in order of precedence: the option given (``camera``, ``size``); the dataset's
    (``data``, a :func:`liv.sim.generate.rendering_settings` record: a BC policy learns from those
    frames); the training frames of the first model whose record is of this suite (``models``: (label,
    its provenance's "rendering" record or None) per model; presets and imported files record none);
    else the suite's first camera / ``default_size``. A note says when a model's record decided; a
    warning names each model trained on another suite, camera or frame size than the rollouts use (its
    embeddings, and so its rewards, then see frames unlike any it learned from). Raises ValueError for
    a camera the suite does not have.
    """
    from liv.sim.suite import get_suite

    suite = suite or get_suite("metaworld")
    trained = [(label, r) for label, r in models if r]
    first = next(((label, r) for label, r in trained if _simulator(r) == suite.name), None)

    def pick(key: str, given: Any, fallback: Any) -> tuple[Any, str]:
        """(value, where it came from) of the first source that has one."""
        sources = [(given, f"--{key}"), (data and data[key], "the dataset"),
                   (first and first[1][key], f"{first[0]}'s provenance" if first else ""), (fallback, "the default")]
        return next((value, source) for value, source in sources if value is not None)

    chosen_camera, camera_from = pick("camera", camera, suite.default_camera)
    suite.check_camera(chosen_camera)
    chosen_size, size_from = pick("size", size, default_size)
    chosen_size = (int(chosen_size[0]), int(chosen_size[1]))
    taken = [text for text, source in ((f"camera {chosen_camera}", camera_from),
                                       (f"size {chosen_size[0]}x{chosen_size[1]} px", size_from))
             if source.endswith("provenance")]
    notes = []
    if taken and first is not None:
        notes.append(f"{command}: {' and '.join(taken)} from {first[0]}'s provenance (it was trained on "
                     f"{_trained_on(first[1], suite.name)}); --camera / --size choose others")
    where = "" if all(_simulator(r) == suite.name for _, r in trained) else f"{suite.name} "
    warnings = [f"{command}: warning: {label} was trained on {_trained_on(r, suite.name)}, but rollouts render "
                f"{where}camera {chosen_camera} ({camera_from}) at {chosen_size[0]}x{chosen_size[1]} px "
                f"({size_from}): its "
                "embeddings of these frames are not what it learned from"
                for label, r in trained if _simulator(r) != suite.name or r["camera"] != chosen_camera
                or tuple(r["size"]) != chosen_size]
    return Rendering(chosen_camera, chosen_size, tuple(notes), tuple(warnings))


def say_rendering(rendering: Rendering) -> None:
    for line in rendering.notes:
        print(line, flush=True)
    for line in rendering.warnings:
        print(line, file=sys.stderr, flush=True)


def model_rendering(spec: str, model: LIVModel) -> dict[str, Any] | None:
    """The "rendering" record of a model's provenance (None when it has none); ValueError naming the model
    when the record is malformed (provenance is free-form JSON, so it may have been edited by hand)."""
    rendering = model.config.provenance.get("rendering")
    if rendering is None:
        return None
    size = rendering.get("size") if isinstance(rendering, dict) else None
    well_formed = (isinstance(size, list) and len(size) == 2 and isinstance(rendering.get("camera"), str)
                   and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size))
    if not well_formed:
        raise ValueError(f"--model {spec}: provenance.rendering must hold a camera name and a [height, width] "
                         f"size in pixels, got {json.dumps(rendering)}")
    return rendering
