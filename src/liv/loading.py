"""`liv.load` and `liv.create`: the two ways to get a model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from liv.checkpoints.errors import CheckpointError
from liv.checkpoints.config_check import describe_mismatch
from liv.checkpoints.native import FORMAT_NAME, is_native, read_native
from liv.model import LIVModel, ModelConfig
from liv.models.clip_config import CLIPConfig, infer_clip_config
from liv.models.clip_shapes import clip_tensor_shapes
from liv.models.presets import PRESETS, get_preset

if TYPE_CHECKING:
    from liv.model_names import ModelSource


def _preset_name(config: CLIPConfig) -> str | None:
    return next((name for name, p in PRESETS.items() if p.config == config), None)


def create(preset: str = "clip-tiny", seed: int = 0, *, antialias: bool = True) -> LIVModel:
    """A new model with random weights: the preset's architecture, OpenAI CLIP's initialisation.

    The same ``seed`` gives the same weights; the global torch RNG is left untouched. Returned in eval
    mode on the CPU.
    """
    config = ModelConfig(clip=get_preset(preset).config, preset=preset, antialias=antialias,
                         provenance={"init": "random", "seed": seed})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LIVModel(config)
    return model.eval()


def _build(config: ModelConfig, state_dict: dict[str, torch.Tensor], source: Path) -> LIVModel:
    # Compared before the model is built, so weights that do not fit cost no allocation.
    problem = describe_mismatch(clip_tensor_shapes(config.clip), {k: v.shape for k, v in state_dict.items()})
    if problem:
        raise CheckpointError(source, f"weights do not fit the architecture: {problem}")
    model = LIVModel(config)
    expected = model.clip.state_dict()
    model.clip.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()})
    return model


def load(path: str | os.PathLike, device: str | torch.device = "cpu", *, antialias: bool | None = None,
         seed: int = 0) -> LIVModel:
    """Load a model by path or name; nothing pickled is ever executed.

    ``path`` is anything :mod:`liv.model_names` accepts; a path that exists always wins over a name.
    A preset name (``clip-tiny``, ``clip-small``, ``clip-rn50``) gives ``create(name, seed=seed)``: random
    weights. A pretrained model's name (``liv-resnet50``, ``openai-rn50``; ``liv models`` lists them) or
    ``hf://OWNER/REPO[@REVISION][/SUBFOLDER]`` is downloaded once into a cache (see :mod:`liv.hub`) and read
    like the file it is. A path may be a liv model directory (``model.safetensors`` + ``config.json``), a reference
    LIV release ``model.pt``, a reference LIV training snapshot, an OpenAI CLIP TorchScript archive
    (``RN50.pt``), a plain CLIP state dict (``.pt``/``.pth`` or ``.safetensors``), or a training
    checkpoint holding one (open_clip, Lightning, ``{"model": ...}`` and the like). Wrapper prefixes
    from DataParallel/DDP, ``torch.compile`` and wrapping modules are removed (see
    :mod:`liv.checkpoints.wrappers`). For foreign files the architecture is inferred from tensor shapes.
    ``antialias`` overrides the stored preprocessing (imported reference files default to the
    reference's resize without antialiasing).

    Returns the model in eval mode on ``device``, its ``source_format`` naming the format read (see
    :mod:`liv.checkpoints.formats`; None for a preset). Raises CheckpointError, one line naming the file and
    the reason (no such file and not a model name; a download that failed, or one that is not cached
    while offline; missing, corrupt or unsafe file; a ``config.json``
    field of the wrong type, out of range, unknown, or contradicted by the weights' shapes, named; no
    CLIP weights, or several; weights that do not fit). Weights are checked against the architecture
    before the model is built, so a file claiming absurd sizes fails without allocating them.
    """
    from liv.model_names import resolve_model

    source = resolve_model(path)
    if source.preset is not None:
        model = create(source.preset, seed=seed, antialias=True if antialias is None else antialias)
        return model.to(device)
    path = source.path
    assert path is not None
    if is_native(path):
        state_dict, config = read_native(path)
        source_format = FORMAT_NAME
        if source.origin:  # a liv model from the Hub: its own provenance, and where it was loaded from
            config.provenance = {**config.provenance, "loaded_from": source.name,
                                 **{k: v for k, v in source.origin.items() if k not in config.provenance}}
    else:
        if path.is_dir():
            raise CheckpointError(path, "directory has no config.json: not a liv model directory")
        from liv.checkpoints.foreign import read_foreign_state_dict

        foreign = read_foreign_state_dict(path)
        try:
            clip_config = infer_clip_config(foreign.state_dict)
        except ValueError as e:
            raise CheckpointError(path, str(e)) from None
        # A downloaded file is named by what it is (its name, source, revision), not by its place in a cache.
        provenance = {"imported_from": source.name if source.origin else str(path.resolve()),
                      **source.origin, "source_format": foreign.format}
        for k, v in foreign.extras.items():  # a checkpoint's own "source_format" must not mask ours
            if isinstance(v, (int, float, str)):
                provenance.setdefault(k, v)
        config = ModelConfig(clip=clip_config, preset=_preset_name(clip_config), antialias=False,
                             provenance=provenance)
        state_dict = foreign.state_dict
        source_format = foreign.format
    if antialias is not None:
        config.antialias = antialias
    model = _build(config, state_dict, path)
    model.source_format = source_format
    return model.to(device).eval()


def check_model(name: str | os.PathLike) -> "ModelSource":
    """What ``name`` stands for, checked as far as can be done without reading weights -> ModelSource.

    For a command to call on every model it was given before it starts any work: a liv model
    directory's ``config.json`` and the weights' header are checked against each other (as
    :func:`load` does), a foreign file must be a file of a kind liv reads. Raises CheckpointError as
    :func:`load` does.
    """
    from liv.checkpoints.foreign import check_container
    from liv.model_names import resolve_model

    source = resolve_model(name)
    if source.path is not None:
        if is_native(source.path):
            read_native(source.path, header_only=True)
        elif source.path.is_dir():
            raise CheckpointError(source.path, "directory has no config.json: not a liv model directory")
        else:
            check_container(source.path)
    return source
