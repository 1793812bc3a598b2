"""`ReproduceConfig`: every setting of `liv reproduce`, with the `cpu` and `paper` scales.

Imports only the standard library (the command line is generated from the field docstrings). A scale
(:data:`SCALES`) sets fields on top of the dataclass defaults, and options given explicitly override it,
as `liv train`'s presets do. The paper's numbers come from seed 002 (Ma et al., ICML 2023): Tables 3
(fine-tuning), 5 (LCBC) and 7 (planning).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from liv.cli_args import check_fields
from liv.models.devices import device_or_auto_problem
from liv.sim.suite import all_tasks, suite_names

OBJECTIVES = ("liv", "clip", "vip-i")
"""Fine-tuning objectives of the paper's Table 1 columns: LIV, CLIP (InfoNCE only), VIP-I (image-goal VIP)."""


@dataclass
class ReproduceConfig:
    """Measure the paper's claims (Tables 1, 2, 6, 8, 9; Figure 6) on a simulation suite, with confidence intervals."""

    out: Path = field(default=Path("reproduce_out"), metadata={"path": "out_dir"})
    """Output folder: report.html, results.json, tables.md, figure6.png; data/, models/ and cells/ cache every
    stage, so rerunning the same command continues a stopped run and a changed option recomputes only what
    depends on it."""
    scale: Literal["cpu", "paper"] = "cpu"
    """cpu: sized to finish in under 3 hours on a 2-core CPU (clip-tiny, 64 px, fewer steps, rollouts and
    planner samples; docs/reproduction.md lists what is scaled down); paper: the paper's settings (clip-rn50,
    Tables 3, 5, 7; 50 rollouts per task, 3 seeds) for a GPU machine. Options given override the scale."""
    suite: str = field(default="metaworld", metadata={"choices": suite_names()})
    """Simulation suite (metaworld, kitchen)."""
    tasks: list[str] = field(default_factory=list, metadata={"choices": all_tasks()})
    """Tasks (of the suite); default: Meta-World's drawer and faucet pairs (4 of the paper's 6 atomic
    instructions), the kitchen's five tasks."""
    init: list[str] = field(default_factory=list)
    """Initial weights, one Table 1 row each (repeat): a model file or folder liv.load reads, or a preset name
    (random weights: the paper's "Random" row), optionally as LABEL=PATH so that the row is matched to the
    paper's (labels CLIP and LIV-EPIC). Default: the scale's preset (cpu clip-tiny, paper clip-rn50)."""
    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES), metadata={"choices": OBJECTIVES})
    """Fine-tuning objectives (Table 1's columns besides Pre-Trained)."""
    data: Path | None = field(default=None, metadata={"path": "dir"})
    """A LeRobot dataset of the tasks' expert episodes to use instead of generating one (`liv sim generate`)."""
    episodes: int = field(default=20, metadata={"min": 1})
    """Generated expert episodes per task (the in-domain data of both fine-tuning and LCBC)."""
    data_seed: int = field(default=0, metadata={"min": 0})
    """Seed of the generated episodes' layouts."""
    camera: str | None = None
    """Camera of the data, the rollouts and the planner; default: the scale's (cpu: Meta-World closeup)."""
    size: int = field(default=64, metadata={"min": 16})
    """Side of the rendered frames in pixels (cpu 64; paper 224)."""
    preset: str = "clip-tiny"
    """The model preset used when --init is not given."""
    train_steps: int = field(default=600, metadata={"min": 1})
    """Fine-tuning steps per objective (paper: 10000)."""
    train_batch_size: int = field(default=32, metadata={"min": 2})
    """Fine-tuning batch (paper: 64)."""
    train_lr: float = field(default=3e-4, metadata={"gt": 0})
    """Fine-tuning learning rate (paper: 1e-5; 3e-4 with cosine decay is what trains clip-tiny from random
    weights in 600 steps, as in `liv demo`)."""
    train_lr_schedule: Literal["constant", "cosine"] = "cosine"
    """Learning-rate schedule of fine-tuning (paper: constant)."""
    train_augment: Literal["rrc", "none"] = "none"
    """Augmentation of fine-tuning (paper: rrc; at 64 px a random resized crop can cut the arm out)."""
    train_processes: int = field(default=1, metadata={"min": 1})
    """Processes per fine-tuning run: > 1 runs `torchrun --nproc_per_node N -m liv train` (one per GPU)."""
    train_device: str = field(default="auto", metadata={"check": device_or_auto_problem})
    """Device of fine-tuning (auto: cuda if available)."""
    conditionings: list[str] = field(default_factory=lambda: ["text", "onehot"],
                                     metadata={"choices": ("text", "onehot")})
    """LCBC task inputs: text (psi(l)) and onehot (Table 6's "(One-Hot)" rows)."""
    bc_seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"min": 0})
    """Policy training seeds (paper: 3)."""
    bc_steps: int = field(default=2000, metadata={"min": 1})
    """Policy training steps (paper: 200000)."""
    bc_batch_size: int | None = field(default=None, metadata={"min": 1})
    """Policy batch; default: the suite's (Meta-World 256, the paper's 4096 scaled down; kitchen 32)."""
    bc_hidden: list[int] = field(default_factory=lambda: [256, 256], metadata={"min": 1})
    """Policy MLP widths (paper: Meta-World 1024 1024 1024, kitchen 256 256)."""
    bc_proprio: bool | None = None
    """Proprioception as a policy input; default: the paper's (Table 5: Meta-World no, kitchen yes)."""
    bc_rollouts: int = field(default=9, metadata={"min": 1})
    """Evaluation rollouts per task and training seed, each from a new start state (paper: 50)."""
    bc_checkpoint: Literal["final", "best"] = "final"
    """final: evaluate the last policy; best: the better of the half-way and final ones on the same rollouts
    (the paper's protocol, optimistic by the choice; it doubles the rollouts)."""
    bc_max_steps: int | None = field(default=None, metadata={"min": 1})
    """Step limit of an LCBC rollout (cpu: 150, Meta-World's experts need 56-92 on the default tasks); None:
    the suite's episode length."""
    planner: Literal["cem", "mppi"] | None = None
    """Planner; default: the paper's for the suite (Meta-World CEM, kitchen MPPI)."""
    plan_rewards: list[str] = field(default_factory=lambda: ["pretrained", "liv", "clip"],
                                    metadata={"choices": ("pretrained",) + OBJECTIVES})
    """Reward models planned with (Table 2 / 8): the pre-trained init and the fine-tuned ones (by objective)."""
    plan_iterations: list[int] = field(default_factory=lambda: [1, 3], metadata={"min": 1})
    """CEM iterations compared (Table 8: 1 and 3)."""
    plan_horizon: int = field(default=20, metadata={"min": 1})
    """Planning horizon in steps (paper: CEM 20, MPPI 50)."""
    plan_samples: int = field(default=60, metadata={"min": 2})
    """Candidate sequences per iteration (paper: CEM 200, MPPI 128; each costs a render and H simulator steps:
    at 60, one Meta-World CEM iteration takes ~1 s on this project's CPU)."""
    plan_replan_every: int = field(default=10, metadata={"min": 1})
    """Executed steps between replanning."""
    plan_episodes: int = field(default=4, metadata={"min": 1})
    """Planning episodes per task and seed."""
    plan_seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"min": 0})
    """Seeds of the planning layouts and the planner's noise."""
    plan_max_steps: int | None = field(default=None, metadata={"min": 1})
    """Steps per planning episode; default: the suite's planning length (Meta-World 100, kitchen 50)."""
    random_goal: bool = True
    """Also plan with the LIV-fine-tuned reward against another task's text (Table 9's control)."""
    oracle: bool = True
    """Also plan with the simulator's own dense reward: shows what the scaled-down planner can do with a
    perfect reward (an upper bound for the LIV rewards)."""
    curves_episodes: int = field(default=1, metadata={"min": 1})
    """Demonstrations per task averaged in the Figure 6 value curves (the paper: one per task)."""
    workers: int = field(default=2, metadata={"min": 1})
    """Processes running policy training, rollouts and planning episodes in parallel."""
    device: str = field(default="cpu", metadata={"check": device_or_auto_problem})
    """Device of embedding, policies and planning rewards (auto: cuda if available)."""
    progress: bool = True
    """Print each finished cell with the time elapsed and an estimate of the time left."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


SCALES: dict[str, dict[str, Any]] = {
    "cpu": {"bc_max_steps": 150},
    "paper": {"preset": "clip-rn50", "size": 224, "camera": None, "train_steps": 10_000, "train_batch_size": 64,
              "train_lr": 1e-5, "train_lr_schedule": "constant", "train_augment": "rrc", "bc_steps": 200_000,
              "bc_rollouts": 50, "bc_checkpoint": "best", "plan_samples": None, "plan_horizon": None,
              "plan_replan_every": 5, "plan_episodes": 17, "episodes": 50, "workers": 8, "device": "auto",
              "bc_max_steps": None},
}
"""Field values each scale sets on top of the dataclass defaults (None: the suite's paper value, below)."""

CPU_CAMERAS = {"metaworld": "closeup", "kitchen": "overview"}
"""The cpu scale's cameras: Meta-World's closeup shows the objects ~2x larger than corner at 64 px."""
PAPER_SUITE = {
    "metaworld": {"planner": "cem", "plan_horizon": 20, "plan_samples": 200, "bc_hidden": [1024, 1024, 1024],
                  "bc_batch_size": 4096, "bc_proprio": False},
    "kitchen": {"planner": "mppi", "plan_horizon": 50, "plan_samples": 128, "bc_hidden": [256, 256],
                "bc_batch_size": 32, "bc_proprio": True},
}
"""The paper's per-suite settings (Tables 5 and 7); the cpu scale takes the planner and proprioception."""


def build_reproduce_config(given: dict[str, Any]) -> ReproduceConfig:
    """A ReproduceConfig from explicitly given fields: the scale's values, then the given ones.

    Fields left None by both are filled from the suite (:data:`PAPER_SUITE`, the suite's defaults).
    Raises ValueError naming a field outside its range or a task outside the suite."""
    from liv.sim.suite import get_suite

    scale = given.get("scale", "cpu")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    values = {**SCALES[scale], **given}
    suite = get_suite(values.get("suite", "metaworld"))
    paper = PAPER_SUITE[suite.name]
    for key in ("planner", "bc_proprio") + (("plan_horizon", "plan_samples", "bc_hidden", "bc_batch_size")
                                            if scale == "paper" else ()):
        if values.get(key) is None and key not in given:
            values[key] = paper[key]
    if values.get("camera") is None and scale == "cpu":
        values["camera"] = CPU_CAMERAS[suite.name]
    for key in ("out", "data"):
        if values.get(key) is not None:
            values[key] = Path(values[key])
    config = ReproduceConfig(**values)
    check_fields(config)
    if not config.tasks:
        config.tasks = list(default_tasks(suite.name))
    suite.check_tasks(config.tasks)
    if config.camera is not None:
        suite.check_camera(config.camera)
    if not config.init:
        config.init = [config.preset]
    if config.random_goal and len(suite.tasks) < 2:
        raise ValueError("random_goal needs a suite with two tasks or more")
    return config


def default_tasks(suite: str) -> tuple[str, ...]:
    """The tasks a scale uses when none are given: Meta-World's drawer and faucet pairs (the paper's
    Meta-World evaluation has these four among its six atomic instructions), the kitchen's defaults."""
    if suite == "metaworld":
        return ("drawer-open-v3", "drawer-close-v3", "faucet-open-v3", "faucet-close-v3")
    from liv.sim.suite import get_suite

    return get_suite(suite).default_tasks


def parse_init(spec: str) -> tuple[str, str]:
    """An --init value -> (label, model): ``LABEL=PATH`` or a bare path/preset (labelled "Random" when it is a
    preset name, else by its file or folder name)."""
    from liv.models.presets import PRESETS

    label, sep, model = spec.partition("=")
    if sep and label and model:
        return label, model
    if spec in PRESETS and not Path(spec).exists():
        return "Random", spec
    return Path(spec).name or spec, spec
