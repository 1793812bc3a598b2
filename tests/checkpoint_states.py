"""Shared by the checkpoint tests: exact comparison of state dicts (the ``tiny_state_dict`` fixture is in
conftest.py)."""

from __future__ import annotations

import torch


def assert_same(loaded: dict[str, torch.Tensor], original: dict[str, torch.Tensor]) -> None:
    """Same keys, dtypes and values, exactly."""
    assert sorted(loaded) == sorted(original)
    for k, v in original.items():
        assert loaded[k].dtype == v.dtype and torch.equal(loaded[k], v), k


def prefixed(sd: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in sd.items()}
