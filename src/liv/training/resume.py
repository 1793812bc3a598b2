"""``--resume`` continues the run in OUT as it was started: with its stored settings, from its newest
complete checkpoint.

A run stores its settings in ``OUT/train_config.json`` (every TrainConfig field but ``out`` and the
flags of how it was started, :data:`NOT_SETTINGS`). On ``--resume`` they are the defaults, so
``--data D --out OUT --resume`` alone continues the run. An option given again with another value is
refused, naming each, unless it is one of :data:`MAY_CHANGE` (how long, where and how fast to train, and
what to save and log: not what is trained) or ``--resume-override`` is given. Runs saved before the
settings file existed are read from their newest checkpoint's copy.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from liv.checkpoints.native import CONFIG_FILE, atomic_write
from liv.cli_args import option_name
from liv.training.checkpointing import MODEL_DIR, RUN_CONFIG_FILE, checkpoint_step, list_checkpoints
from liv.training.config import TRAIN_PRESETS, TrainConfig, build_config
from liv.training.run_dir import settled

MAY_CHANGE = ("steps", "save_every", "keep_last", "log_every", "eval_data", "eval_every", "max_bad_samples",
              "check_data", "device", "num_workers", "bf16", "compile", "grad_checkpointing", "progress")
"""Settings a resumed run may change without --resume-override (--steps extends or shortens what is left;
with a cosine schedule the decay then ends at the new last step)."""
NOT_SETTINGS = ("out", "resume", "overwrite", "resume_override")
"""Fields that say where and how a run was started, not what it is: neither stored nor compared."""
_PATHS = ("data", "eval_data")
_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def settings_of(config: TrainConfig) -> dict[str, Any]:
    """The settings of ``config`` as stored: JSON values, paths absolute (a resume may run elsewhere)."""
    values = {k: v for k, v in config.to_dict().items() if k not in NOT_SETTINGS}
    for key in _PATHS:
        if values[key] is not None:
            values[key] = os.path.abspath(values[key])
    if values.get("init") is not None and os.path.exists(values["init"]):  # a path, not a model name
        values["init"] = os.path.abspath(values["init"])
    return values


def write_settings(directory: Path, config: TrainConfig) -> None:
    """Store ``config``'s settings as ``directory/train_config.json`` (atomically; unchanged files are not
    rewritten)."""
    path = directory / RUN_CONFIG_FILE
    text = json.dumps(settings_of(config), indent=2) + "\n"
    if not path.is_file() or path.read_text() != text:
        atomic_write(path, lambda p: p.write_text(text))


def stored_settings(root: Path) -> tuple[dict[str, Any], Path] | None:
    """(settings, file) of the run in ``root``: ``train_config.json``, else the newest checkpoint's copy;
    None when ``root`` holds neither. Raises ValueError naming the file when it cannot be read."""
    candidates = [settled(root, RUN_CONFIG_FILE)]
    candidates += [c / RUN_CONFIG_FILE for c in reversed(list_checkpoints(settled(root, "checkpoints").parent))]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None
    try:
        values = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the run's stored settings ({e}); --resume needs them") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: the run's stored settings are not a JSON object; --resume needs them")
    return {k: v for k, v in values.items() if k in _FIELDS and k not in NOT_SETTINGS}, path


def _comparable(key: str, value: Any) -> Any:
    if value is not None and (key in _PATHS or (key == "init" and os.path.exists(value))):
        return os.path.realpath(value)
    return list(value) if isinstance(value, (list, tuple)) else value


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def _refuse_changes(given: dict[str, Any], stored: dict[str, Any], path: Path) -> None:
    differ = [k for k in given if k in stored and k not in (*NOT_SETTINGS, *MAY_CHANGE)
              and _comparable(k, given[k]) != _comparable(k, stored[k])]
    if differ:
        shown = ", ".join(f"{option_name(_FIELDS[k])} {_shown(given[k])} (stored: {_shown(stored[k])})"
                          for k in differ)
        may = ", ".join(option_name(_FIELDS[k]) for k in MAY_CHANGE)
        raise ValueError(f"--resume: {shown}: differ from the run's settings in {path}; leave them out to continue "
                         f"the run as it was, or add --resume-override to change them (options that may change "
                         f"without it: {may})")


def resume_config(given: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of the explicitly given command-line options (field name -> value): as
    :func:`liv.training.config.build_config`, but with ``resume`` the stored settings of the run in
    ``out`` are the defaults (a --preset given with --resume-override applies its values over them).

    Raises ValueError naming each option given with another value than the stored one, unless it is in
    :data:`MAY_CHANGE` or ``resume_override`` is given; and when the stored settings cannot be read.
    """
    found = stored_settings(Path(given["out"])) if given.get("resume") and given.get("out") is not None else None
    if found is None:
        return build_config(given)
    stored, path = found
    if not given.get("resume_override"):
        _refuse_changes(given, stored, path)
    base = dict(stored)
    if given.get("preset", stored.get("preset")) != stored.get("preset"):
        # what the old preset set goes back to the defaults, then the new preset's values apply
        for key in TRAIN_PRESETS.get(stored.get("preset"), {}):
            base[key] = _default(key)
        base.update(TRAIN_PRESETS.get(given["preset"], {}))
    return build_config({**base, **given})


def _default(key: str) -> Any:
    f = _FIELDS[key]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def check_resume(config: TrainConfig) -> int | None:
    """Before resuming with ``config``: refuse settings that differ from the stored ones (as
    :func:`resume_config`, every field counted as given) and a ``steps`` below the step the run reached.
    Returns the step of the newest complete checkpoint, or None. Raises ValueError (one line)."""
    found = stored_settings(config.out)
    if found is not None and not config.resume_override:
        _refuse_changes(settings_of(config), *found)
    checkpoints = list_checkpoints(settled(config.out, "checkpoints").parent)
    reached = checkpoint_step(checkpoints[-1]) if checkpoints else None
    if reached is not None and reached > config.steps:
        raise ValueError(f"--steps {config.steps}: the run in {config.out} is at step {reached} already; give "
                         f"more steps to train it further")
    return reached


def finished(root: Path, steps: int) -> bool:
    """Whether the run in ``root`` ended at ``steps``: its newest checkpoint is of that step, and its final
    model (``root/model``) was saved at that step (liv train records the step in the model's provenance)."""
    checkpoints = list_checkpoints(root)
    if not checkpoints or checkpoint_step(checkpoints[-1]) != steps:
        return False
    try:
        saved = json.loads((root / MODEL_DIR / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):  # none, or damaged: it is written again
        return False
    provenance = saved.get("provenance") if isinstance(saved, dict) else None
    return isinstance(provenance, dict) and provenance.get("step") == steps
