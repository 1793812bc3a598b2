"""Named model presets: the paper's ResNet-50 CLIP and small models that train on a CPU."""

from __future__ import annotations

from dataclasses import dataclass

from liv.models.clip_config import CLIPConfig


@dataclass(frozen=True)
class Preset:
    """A named architecture with a one-line description of what it is for."""

    name: str
    config: CLIPConfig
    description: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "clip-rn50",
            CLIPConfig(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                       transformer_width=512, transformer_heads=8, transformer_layers=12),
            "OpenAI CLIP RN50, the architecture of the released LIV model (102M parameters, 224 px).",
        ),
        Preset(
            "clip-small",
            CLIPConfig(embed_dim=256, image_resolution=128, vision_layers=(1, 2, 2, 1), vision_width=32,
                       transformer_width=256, transformer_heads=4, transformer_layers=4),
            "Small ResNet CLIP for CPU fine-tuning experiments (128 px).",
        ),
        Preset(
            "clip-tiny",
            CLIPConfig(embed_dim=128, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=16,
                       transformer_width=128, transformer_heads=2, transformer_layers=2),
            "Tiny ResNet CLIP that trains in minutes on 2 CPU cores (64 px); the demo's default.",
        ),
    )
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name; the error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset '{name}'; choose one of {sorted(PRESETS)}") from None
