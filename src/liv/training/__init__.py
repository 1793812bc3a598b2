"""Training: config, batches, objectives, checkpoints, distributed setup. The loop is liv.train.

Submodules are imported on first use (see :mod:`liv._lazy`)."""

from liv._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {})
