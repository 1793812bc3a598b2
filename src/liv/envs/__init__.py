"""Environments: Gymnasium reward wrappers (LIVReward, LIVRewardVector); simulation suites live in liv.sim.

``LIVReward`` and ``LIVRewardVector`` need gymnasium, an optional dependency; they are imported on first
access, so ``import liv.envs`` works without it and the error names the missing package. Submodules are
imported on first use too (see :mod:`liv._lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liv._lazy import lazy_attributes

__all__ = ["LIVReward", "LIVRewardVector"]

__getattr__, __dir__ = lazy_attributes(__name__, dict.fromkeys(__all__, "gym_wrapper"))

if TYPE_CHECKING:
    from liv.envs.gym_wrapper import LIVReward, LIVRewardVector
