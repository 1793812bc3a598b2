"""liv: LIV (Language-Image Value learning) vision-language representations and rewards for robots.

Quick start::

    import liv
    model = liv.load("model.pt")                      # reference LIV, OpenAI CLIP or liv format
    values = model.similarity(frames, "open the drawer")  # (N,) cosine similarity per frame
"""

__version__ = "0.1.0"

from liv.checkpoints.errors import CheckpointError
from liv.loading import create, load
from liv.model import LIVModel, ModelConfig
from liv.models.clip import CLIPConfig
from liv.models.presets import PRESETS
from liv.models.tokenizer import TextTruncatedWarning, tokenize

__all__ = ["CLIPConfig", "CheckpointError", "LIVModel", "ModelConfig", "PRESETS", "TextTruncatedWarning", "create",
           "load", "tokenize", "__version__"]
