"""liv's own checkpoint format: a directory with ``model.safetensors`` and ``config.json``.

safetensors holds only tensors (nothing executable); the JSON holds the architecture, the
preprocessing and where the weights came from.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from liv.checkpoints.config_check import check_weights, parse_model_config
from liv.checkpoints.errors import CheckpointError

if TYPE_CHECKING:
    from liv.model import ModelConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_NAME = "liv-model"
FORMAT_VERSION = 1
"""Raise it when config.json gains a field: older versions then say "upgrade liv" instead of refusing the
field as unknown (see liv.checkpoints.config_check)."""
_MAX_CONFIG_BYTES = 1 << 20  # a config is a few KB; a bigger file is another file, not to be read whole


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, fsync it, then rename it over
    ``path``: readers see the old file or the complete new one, never a partial write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_to_json(config: "ModelConfig") -> dict[str, Any]:
    """The ``config.json`` document for a model configuration."""
    from liv import __version__

    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "liv_version": __version__,
        "preset": config.preset,
        "clip": config.clip.to_dict(),
        "preprocess": {"antialias": config.antialias},
        "provenance": config.provenance,
    }


def save_native(directory: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: "ModelConfig") -> None:
    """Write ``state_dict`` (CLIP keys -> tensors) and ``config`` into ``directory``.

    The weights are written first and the config last, so a directory with a config always has the
    weights that config describes.
    """
    directory = Path(directory)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(tensors, str(p), metadata={"format": FORMAT_NAME}))
    doc = json.dumps(config_to_json(config), indent=2) + "\n"
    atomic_write(directory / CONFIG_FILE, lambda p: p.write_text(doc))


def is_native(path: str | os.PathLike) -> bool:
    """True when ``path`` is a liv model directory (or a file inside one)."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    return (directory / CONFIG_FILE).is_file() and (path.is_dir() or path.name in (WEIGHTS_FILE, CONFIG_FILE))


def _read_config(config_path: Path) -> Any:
    """``config.json`` parsed; refused past _MAX_CONFIG_BYTES without reading the rest."""
    try:
        with open(config_path, "rb") as f:
            raw = f.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise CheckpointError(config_path, "missing config.json") from None
    except OSError as e:
        raise CheckpointError(config_path, f"cannot read config.json ({e.strerror or e})") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise CheckpointError(config_path, f"config.json is over {_MAX_CONFIG_BYTES >> 20} MiB; a liv model "
                                           "config is a few KB: is this the right file?")
    try:
        text = raw.decode("utf-8-sig")  # -sig: accept the byte-order mark some editors write
    except UnicodeDecodeError as e:
        raise CheckpointError(config_path, f"config.json is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                                           f"{e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(config_path, f"config.json is not valid JSON ({e})") from None
    except RecursionError:
        raise CheckpointError(config_path, "config.json is not valid JSON (nested too deeply)") from None


def read_native(path: str | os.PathLike, *, header_only: bool = False
                ) -> tuple[dict[str, torch.Tensor], "ModelConfig"]:
    """Read a liv model directory -> (state dict on CPU, its ModelConfig); with ``header_only``, check
    everything but read no tensor -> ({}, ModelConfig).

    ``config.json`` is checked field by field, then the tensor shapes in the weights' header against
    it, all before any tensor is read or the model built: a config or header claiming absurd sizes
    fails without allocating them, and the weights are read once.

    Raises CheckpointError in one line naming the file (and the field, for the config): a missing
    file; config.json not UTF-8, not JSON or over 1 MiB; a foreign or newer format; a field of the
    wrong type, out of range, unknown or contradicted by the weights (see
    :mod:`liv.checkpoints.config_check`); a corrupt or truncated safetensors file; tensors missing,
    extra or of another shape than the config implies.
    """
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    config, defaulted = parse_model_config(_read_config(config_path), config_path)
    if not weights_path.is_file():
        raise CheckpointError(weights_path, "missing model.safetensors next to config.json")
    try:
        # safe_open parses only the header (and refuses one that the file's length does not cover)
        weights = safe_open(str(weights_path), framework="pt", device="cpu")
        with weights:
            shapes = {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
            check_weights(config.clip, shapes, config_path, weights_path, defaulted)
            state_dict = {} if header_only else {key: weights.get_tensor(key) for key in shapes}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(weights_path, f"corrupt or truncated safetensors file ({e})") from None
    return state_dict, config
