"""`CLIPConfig`, the hyper-parameters of liv's CLIP, apart from the modules that build it.

It imports no torch, so that presets and command-line options can name architectures cheaply
(``import liv`` and ``liv --help`` stay fast); :mod:`liv.models.clip` builds the model from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class CLIPConfig:
    """Hyper-parameters of a CLIP model with a ModifiedResNet image tower; ValueError names a field out of range."""

    embed_dim: int = 1024
    """Dimension D of the joint embedding space (output of both towers)."""
    image_resolution: int = 224
    """Side in pixels of the square image the vision tower takes; a multiple of 32."""
    vision_layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    """Number of bottleneck blocks in each of the four ResNet stages."""
    vision_width: int = 64
    """Channels of the first stage; stage i has vision_width * 2**i * 4 output channels."""
    vision_heads: int | None = None
    """Heads of the attention pool; None means OpenAI's rule vision_width * 32 // 64."""
    context_length: int = 77
    """Maximum number of tokens, start and end tokens included."""
    vocab_size: int = 49408
    """Size of the token vocabulary (CLIP BPE: 49408)."""
    transformer_width: int = 512
    """Width of the text transformer."""
    transformer_heads: int = 8
    """Attention heads of the text transformer."""
    transformer_layers: int = 12
    """Residual attention blocks of the text transformer."""

    def __post_init__(self) -> None:
        # Each message starts with the field's name: config.json errors prefix it with "clip.".
        object.__setattr__(self, "vision_layers", tuple(int(n) for n in self.vision_layers))
        if len(self.vision_layers) != 4:
            raise ValueError(f"vision_layers must have 4 entries, got {list(self.vision_layers)}")
        # vision_width >= 2: the stem has vision_width // 2 channels; context_length >= 2: start and end tokens.
        for name, least in (("embed_dim", 1), ("image_resolution", 32), ("vision_width", 2), ("context_length", 2),
                            ("vocab_size", 1), ("transformer_width", 1), ("transformer_heads", 1),
                            ("transformer_layers", 1)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if min(self.vision_layers) < 1:
            raise ValueError(f"vision_layers must be 4 block counts of at least 1, got {list(self.vision_layers)}")
        if self.vision_heads is not None and self.vision_heads < 1:
            raise ValueError(f"vision_heads must be at least 1 or null, got {self.vision_heads}")
        if self.image_resolution % 32:
            raise ValueError(f"image_resolution must be a multiple of 32, got {self.image_resolution}")
        if self.transformer_width % self.transformer_heads:
            raise ValueError(f"transformer_width ({self.transformer_width}) must be divisible by transformer_heads "
                             f"({self.transformer_heads})")
        if (self.vision_width * 32) % self.resolved_vision_heads:
            heads = (f"vision_heads ({self.vision_heads})" if self.vision_heads is not None else
                     f"vision_width // 2 ({self.resolved_vision_heads}), the default of vision_heads,")
            raise ValueError(f"{heads} must divide vision_width * 32 ({self.vision_width * 32})")

    @property
    def resolved_vision_heads(self) -> int:
        """Heads of the attention pool after applying OpenAI's default rule."""
        return self.vision_heads if self.vision_heads is not None else max(1, self.vision_width * 32 // 64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists)."""
        d = asdict(self)
        d["vision_layers"] = list(self.vision_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CLIPConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos do not pass silently."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown CLIP config keys: {sorted(unknown)}")
        return cls(**d)


def infer_clip_config(state_dict: Mapping[str, torch.Tensor]) -> CLIPConfig:
    """Recover the :class:`CLIPConfig` of a ModifiedResNet CLIP from its tensors' shapes.

    Head counts are not stored in the weights: they follow OpenAI's rules (width // 64), which hold for
    every released ResNet CLIP and for the reference LIV checkpoints.
    Raises ValueError naming the missing key when the state dict is not a ResNet CLIP.
    """
    def get(key: str) -> torch.Tensor:
        if key not in state_dict:
            raise ValueError(f"not a ResNet CLIP state dict: key '{key}' is missing")
        return state_dict[key]

    if "visual.proj" in state_dict or "visual.class_embedding" in state_dict:
        raise ValueError("this is a ViT CLIP; liv supports the ResNet CLIP architecture (as LIV)")
    vision_layers = tuple(
        len({k.split(".")[2] for k in state_dict if k.startswith(f"visual.layer{stage}.")}) for stage in (1, 2, 3, 4))
    if min(vision_layers) == 0:
        raise ValueError(f"not a ResNet CLIP state dict: blocks per stage {vision_layers}")
    vision_width = get("visual.layer1.0.conv1.weight").shape[0]
    grid = math.isqrt(get("visual.attnpool.positional_embedding").shape[0] - 1)
    width = get("ln_final.weight").shape[0]
    layers = len({k.split(".")[2] for k in state_dict if k.startswith("transformer.resblocks.")})
    return CLIPConfig(
        embed_dim=get("text_projection").shape[1],
        image_resolution=grid * 32,
        vision_layers=vision_layers,  # type: ignore[arg-type]
        vision_width=vision_width,
        context_length=get("positional_embedding").shape[0],
        vocab_size=get("token_embedding.weight").shape[0],
        transformer_width=width,
        transformer_heads=max(1, width // 64),
        transformer_layers=layers,
    )


__all__ = ["CLIPConfig", "infer_clip_config"]
