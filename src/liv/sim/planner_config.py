"""`PlannerConfig`: the settings of the CEM and MPPI planners of :mod:`liv.sim.planning`.

Apart from the planners so that `liv plan`'s options (which extend it) import no numpy or torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Literal

from liv.cli_args import check_fields


@dataclass
class PlannerConfig:
    """Settings of CEM or MPPI over (horizon, action dim) action sequences in [-1, 1]."""

    planner: Literal["cem", "mppi"] = "cem"
    """cem: refit a Gaussian to the elite fraction; mppi: score-weighted average of perturbed plans."""
    horizon: int | None = field(default=None, metadata={"min": 1})
    """Steps per candidate sequence (None: 20 for CEM, 50 for MPPI, the paper's)."""
    samples: int | None = field(default=None, metadata={"min": 2})
    """Candidate sequences per iteration (None: 200 for CEM, 128 for MPPI, the paper's)."""
    iterations: int = field(default=3, metadata={"min": 1})
    """Refinement iterations per replanning point (CEM); MPPI usually uses 1."""
    elite_frac: float = field(default=0.1, metadata={"gt": 0, "max": 1})
    """CEM: fraction of candidates kept as elites."""
    init_std: float = field(default=0.5, metadata={"gt": 0})
    """Std of the sampling Gaussian at the first iteration (action units)."""
    min_std: float = field(default=0.05, metadata={"min": 0})
    """CEM: lower bound of the refitted std, so that sampling never collapses."""
    temperature: float = field(default=0.5, metadata={"gt": 0})
    """MPPI: softmax temperature in units of the candidates' score std (scale-free: LIV similarity gaps are
    small and differ between models)."""
    smoothing: float = field(default=0.5, metadata={"min": 0, "lt": 1})
    """MPPI: noise is low-pass filtered over time, n_t = s n_t-1 + (1 - s) e_t, for smooth arm motion."""
    replan_every: int = field(default=1, metadata={"min": 1})
    """Actions of each plan executed before planning again."""
    score: Literal["final", "discounted"] = "final"
    """final: S(o_H) - S(o_0) (the telescoped reward sum; renders one frame per candidate); discounted: the
    gamma-discounted reward sum over frames rendered every ``render_every`` steps."""
    gamma: float = field(default=0.98, metadata={"gt": 0, "max": 1})
    """Discount of score="discounted"."""
    render_every: int = field(default=5, metadata={"min": 1})
    """score="discounted": steps between rendered frames of a candidate (its last frame is always rendered)."""
    seed: int = field(default=0, metadata={"min": 0})
    """Seed of the planner's random numbers."""
    warm_start: bool = True
    """Start the first plan from the environment's approach sequence where it has one (the kitchen's: a fixed
    open-loop sequence bringing the hand near the task object without doing the task, the paper's appendix
    E), else from zeros (Meta-World)."""

    def resolved(self) -> PlannerConfig:
        """A PlannerConfig with ``horizon``/``samples`` filled in from the planner's paper defaults, validated.

        Raises ValueError naming the field for a value outside its declared range (field metadata).
        """
        check_fields(self)
        h = self.horizon or (20 if self.planner == "cem" else 50)
        n = self.samples or (200 if self.planner == "cem" else 128)
        # the PlannerConfig fields only: subclasses (liv plan's PlanArgs) carry more settings
        return PlannerConfig(**{**{f.name: getattr(self, f.name) for f in fields(PlannerConfig)},
                                "horizon": h, "samples": n})
