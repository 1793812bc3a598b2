"""liv: LIV (Language-Image Value learning) vision-language representations and rewards for robots.

Quick start::

    import liv
    model = liv.load("model.pt")                      # reference LIV, OpenAI CLIP or liv format
    values = model.similarity(frames, "open the drawer")  # (N,) cosine similarity per frame

``import liv`` imports neither torch nor any subpackage: each name below, and each subpackage
(``liv.data``, ``liv.envs``, ``liv.eval``, ``liv.sim``, ``liv.checkpoints``, ``liv.models``, ...), is imported
when first used, so the command line starts in a fraction of a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liv._lazy import lazy_attributes

__version__ = "0.1.0"

__all__ = ["CLIPConfig", "CheckpointError", "LIVModel", "ModelConfig", "PRESETS", "TextTruncatedWarning", "create",
           "load", "tokenize", "__version__"]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "CLIPConfig": "models.clip_config",
    "CheckpointError": "checkpoints.errors",
    "LIVModel": "model",
    "ModelConfig": "model",
    "PRESETS": "models.presets",
    "TextTruncatedWarning": "models.tokenizer",
    "create": "loading",
    "load": "loading",
    "tokenize": "models.tokenizer",
})

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these on first use
    from liv import checkpoints, data, envs, eval, models, reward, training  # noqa: F401
    from liv.checkpoints.errors import CheckpointError
    from liv.loading import create, load
    from liv.model import LIVModel, ModelConfig
    from liv.models.clip_config import CLIPConfig
    from liv.models.presets import PRESETS
    from liv.models.tokenizer import TextTruncatedWarning, tokenize
