"""Checkpoint files: liv's own format (``native``), other projects' files read safely (``foreign``,
``torch_pickle``, ``wrappers``), ``config.json`` rules (``config_check``). Submodules are imported on
first use (see :mod:`liv._lazy`)."""

from liv._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {})
