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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from liv.checkpoints.errors import CheckpointError
from liv.models.clip import CLIPConfig

if TYPE_CHECKING:
    from liv.model import ModelConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_NAME = "liv-model"
FORMAT_VERSION = 1


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


def read_native(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a liv model directory -> (state dict on CPU, parsed ``config.json``).

    Raises CheckpointError naming the file for a missing file, invalid JSON, a foreign or newer format,
    or corrupt weights.
    """
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    try:
        doc = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(config_path, "missing config.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(config_path, f"config.json is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise CheckpointError(config_path, f"not a liv model config (format={doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(config_path, f"format version {doc['format_version']} is newer than this liv "
                                           f"(reads up to {FORMAT_VERSION}); upgrade liv")
    if not weights_path.is_file():
        raise CheckpointError(weights_path, "missing model.safetensors next to config.json")
    try:
        state_dict = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(weights_path, f"corrupt or truncated safetensors file ({e})") from None
    return state_dict, doc


def model_config_from_json(doc: dict[str, Any], source: Path) -> "ModelConfig":
    """Parse a ``config.json`` document into a ModelConfig; errors name ``source``."""
    from liv.model import ModelConfig

    try:
        return ModelConfig(
            clip=CLIPConfig.from_dict(doc["clip"]),
            preset=doc.get("preset"),
            antialias=bool(doc.get("preprocess", {}).get("antialias", True)),
            provenance=dict(doc.get("provenance", {})),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(source, f"invalid model config ({type(e).__name__}: {e})") from None
