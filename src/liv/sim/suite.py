"""Simulation suites: what a benchmark is to liv's generation, LCBC and planning code.

A suite is an environment factory, a task table and an expert (the environment's ``expert_action``).
Everything that runs simulations (:mod:`liv.sim.generate`, :mod:`liv.sim.bc`, :mod:`liv.sim.planning`)
takes a :class:`Suite` and talks to its environments through :class:`SimEnv` only, so a new benchmark
adds one folder (``liv/sim/<suite>/``: ``tasks.py``, ``env.py``) and one entry in :data:`SUITES`.

This module and each suite's ``tasks.py`` import only the standard library: command-line options list
the task names as choices without importing numpy or MuJoCo.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TaskSpec:
    """A simulated task with its language annotation.

    ``success_rate``: the suite's scripted expert's measured success rate on 20 seeded starts (seeds
    0..19; each suite's task table says how it was measured); ``opposite``: the task undoing this one in
    the same scene, if any; ``expert_steps``: (min, median, max) steps the expert needed to first succeed
    in that measurement.
    """

    name: str
    text: str
    success_rate: float
    opposite: str | None = None
    expert_steps: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Suite:
    """A simulation benchmark: its task table, cameras, action and state layout, and environment factory."""

    name: str
    """Short name (``metaworld``, ``kitchen``): the ``--suite`` choice and the datasets' ``simulator``."""
    title: str
    """Name for people (``Meta-World v3``)."""
    tasks: dict[str, TaskSpec]
    """Annotated tasks by name, in table order."""
    default_tasks: tuple[str, ...]
    """Tasks `liv sim generate` records when none are named."""
    cameras: tuple[str, ...]
    """Camera names environments accept, the default first."""
    default_size: tuple[int, int]
    """(height, width) in pixels of rendered frames unless chosen otherwise."""
    action_names: tuple[str, ...]
    """Names of the action vector's entries, each in [-1, 1]."""
    state_names: tuple[str, ...]
    """Names of the proprioceptive state's entries (the policy's and the dataset's observation.state)."""
    step_seconds: float
    """Simulated seconds per environment step (the dataset's frame period at record_every=1)."""
    episode_steps: int
    """Default step limit of a generated or evaluated episode."""
    robot_type: str
    """LeRobot's ``robot_type`` of generated datasets."""
    env_module: str
    """Module with ``make_env(task, seed, camera, size) -> SimEnv`` (imported on first use)."""
    install_hint: str
    """What to install when the simulator is missing."""
    bc_batch_size: int = 256
    """`liv bc`'s default batch (Meta-World: 256, scaled down from the paper's 4096; the kitchen: the paper's 32)."""
    plan_steps: int = 100
    """`liv plan`'s default episode length in steps."""
    failure_steps: tuple[int, int] = (60, 120)
    """Range (inclusive) of a generated failure episode's length in steps, about an expert's."""
    packages: tuple[str, ...] = field(default=())
    """Distributions whose versions generated datasets record."""

    @property
    def default_camera(self) -> str:
        return self.cameras[0]

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def task_text(self, task: str) -> str:
        """The annotation of ``task`` (its name when it has none)."""
        spec = self.tasks.get(task)
        return spec.text if spec else task

    def check_tasks(self, tasks: Sequence[str]) -> list[str]:
        """``tasks`` as a list; ValueError naming the unknown ones (and where to list the known) or repeats."""
        tasks = list(tasks)
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown:
            raise ValueError(f"{self.title} tasks without an annotation: {', '.join(unknown)}; "
                             f"`liv sim generate --suite {self.name} --list-tasks` lists them")
        if not tasks or len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks must be a non-empty list without repeats, got {tasks}")
        return tasks

    def check_camera(self, camera: str) -> str:
        """``camera``, or ValueError naming the suite's cameras."""
        if camera not in self.cameras:
            raise ValueError(f"no camera {camera!r} in {self.title}; cameras: {', '.join(self.cameras)}")
        return camera

    def make_env(self, task: str, seed: int, camera: str | None = None,
                 size: tuple[int, int] | None = None) -> SimEnv:
        """A new environment for ``task`` whose start state is drawn from ``seed`` (see the suite's env module).

        Raises ImportError naming what to install when the simulator is missing, ValueError for an
        unknown task or camera."""
        module = importlib.import_module(self.env_module)
        return module.make_env(task, seed, camera=camera or self.default_camera, size=size or self.default_size)


class SimEnv(Protocol):
    """What liv's generation, LCBC and planning use of an environment (MetaWorldEnv, KitchenEnv).

    One task, one seeded start state that every ``reset`` restores, offscreen rendering, a scripted
    expert, and exact save/restore of the simulation for planning.
    """

    task: str
    seed: int
    camera: str
    size: tuple[int, int]
    text: str

    @property
    def max_steps(self) -> int: ...

    @property
    def action_dim(self) -> int: ...

    def reset(self) -> Any: ...

    def step(self, action) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """-> (obs, reward, terminated, truncated, info) with ``info["success"]`` a bool."""
        ...

    def is_success(self) -> bool: ...

    def progress(self) -> float:
        """Ground-truth task progress of the current state in [0, 1] (each suite documents its rule)."""
        ...

    def proprio(self, obs=None) -> Any:
        """(S,) float32 proprioceptive state (the suite's state_names)."""
        ...

    def expert_action(self, obs=None) -> Any:
        """(A,) float32 action in [-1, 1] of the scripted expert in the current state."""
        ...

    def render(self) -> Any:
        """(H, W, 3) uint8 RGB, upright."""
        ...

    def get_state(self) -> Any: ...

    def set_state(self, state) -> Any: ...

    def close(self) -> None: ...

    # Optional: ``approach_actions() -> (K, A) float32``, a fixed open-loop sequence that brings the hand near
    # the task object without doing the task (the kitchen's MPPI warm start, the paper's appendix E).


def _metaworld() -> Suite:
    from liv.sim.metaworld import tasks as t

    return Suite("metaworld", "Meta-World v3", t.TASKS, t.DEFAULT_TASKS, t.CAMERAS, t.DEFAULT_SIZE, t.ACTION_NAMES,
                 t.STATE_NAMES, t.STEP_SECONDS, t.EPISODE_STEPS, "sawyer", "liv.sim.metaworld.env",
                 "pip install 'liv[sim]' (metaworld==3.1.1, mujoco==3.3.0, gymnasium)", 256, 100, (60, 120),
                 ("metaworld", "mujoco"))


def _kitchen() -> Suite:
    from liv.sim.kitchen import tasks as t

    # LCBC batch 32 (Table 5) and MPPI's 50-step episodes (Table 7) are the paper's kitchen settings.
    return Suite("kitchen", "FrankaKitchen", t.TASKS, t.DEFAULT_TASKS, t.CAMERAS, t.DEFAULT_SIZE, t.ACTION_NAMES,
                 t.STATE_NAMES, t.STEP_SECONDS, t.EPISODE_STEPS, "franka", "liv.sim.kitchen.env",
                 "pip install 'liv[sim]' (gymnasium-robotics>=1.4, mujoco==3.3.0, gymnasium)", 32, t.PLAN_STEPS,
                 t.FAILURE_STEPS, ("gymnasium_robotics", "mujoco"))


_FACTORIES = {"metaworld": _metaworld, "kitchen": _kitchen}
_BUILT: dict[str, Suite] = {}


def suite_names() -> tuple[str, ...]:
    """Names of the registered suites, the default (metaworld) first."""
    return tuple(_FACTORIES)


def get_suite(name: str) -> Suite:
    """The suite called ``name``; ValueError naming the known ones."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown simulation suite {name!r}; suites: {', '.join(_FACTORIES)}")
    if name not in _BUILT:
        _BUILT[name] = _FACTORIES[name]()
    return _BUILT[name]


def all_tasks() -> tuple[str, ...]:
    """Every annotated task of every suite (task names are unique across suites)."""
    return tuple(task for name in _FACTORIES for task in get_suite(name).tasks)


def suite_of(tasks: Sequence[str], suite: str | None = None) -> Suite:
    """The suite of ``tasks`` (``suite`` if given, checked) -> Suite.

    Raises ValueError for a task no suite has, tasks of two suites, or tasks outside the given suite."""
    if suite is not None:
        chosen = get_suite(suite)
        chosen.check_tasks(tasks)
        return chosen
    owners = {}
    for task in tasks:
        owner = next((n for n in _FACTORIES if task in get_suite(n).tasks), None)
        if owner is None:
            raise ValueError(f"task without an annotation: {task!r}; `liv sim generate --suite SUITE --list-tasks` "
                             f"lists each suite's ({', '.join(_FACTORIES)})")
        owners.setdefault(owner, []).append(task)
    if len(owners) > 1:
        raise ValueError("tasks from different suites: " + "; ".join(f"{n}: {', '.join(v)}" for n, v in owners.items()))
    return get_suite(next(iter(owners)) if owners else "metaworld")
