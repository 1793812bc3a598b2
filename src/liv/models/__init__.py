"""The model's parts: the CLIP architecture (``clip``, ``clip_config``), ``presets``, the ``tokenizer``,
image ``preprocess``ing. Submodules are imported on first use (see :mod:`liv._lazy`)."""

from liv._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {})
