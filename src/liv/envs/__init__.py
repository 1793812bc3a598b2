"""Environments: Gymnasium reward wrappers (and, later, simulation factories).

``LIVReward`` and ``LIVRewardVector`` need gymnasium, an optional dependency; they are imported on first
access, so ``import liv.envs`` works without it and the error names the missing package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LIVReward", "LIVRewardVector"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from liv.envs import gym_wrapper

        return getattr(gym_wrapper, name)
    raise AttributeError(f"module 'liv.envs' has no attribute {name!r}")
