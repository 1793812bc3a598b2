"""Meta-World v3 tasks with language annotations, scripted experts and fast offscreen rendering.

``make_env(task, seed)`` builds a Meta-World v3 environment whose object and goal positions are drawn
from ``seed`` (the same seed gives the same layout; reset() keeps it), renders it offscreen with
:class:`liv.sim.rendering.Camera` (upright frames; shadows, reflections and multisampling off: measured
80/51/41 frames/s at 64/128/224 px against MuJoCo's defaults' 6/7/6 on a 2-core CPU), and can save and
restore the full physics state so that a planner can roll out from any point.

Meta-World, MuJoCo and Gymnasium are optional: ``pip install 'liv[sim]'`` (metaworld==3.1.1, which
pins mujoco==3.3.0). They are imported on first use, so ``import liv.sim.metaworld.env`` works without.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from liv.sim import rendering

# re-exported: the task table lives apart, importable without numpy (command-line options list it)
from liv.sim.metaworld.tasks import ACTION_NAMES, DEFAULT_SIZE, PAIRED_TASKS, STATE_NAMES, TASKS, TaskSpec  # noqa: F401

FLIPPED_CAMERAS = ("corner", "corner2", "corner3", "corner4")
"""Meta-World's cameras whose images come out of MuJoCo rotated by 180 degrees (turned upright here)."""
VIRTUAL_CAMERAS: dict[str, dict[str, Any]] = {
    "closeup": {"lookat": (0.0, 0.7, 0.12), "distance": 1.35, "azimuth": 140.0, "elevation": -30.0},
}
"""Free cameras added here (not in Meta-World's models): ``closeup`` frames the workspace from the robot's
left, so objects fill ~2x more of the image than from ``corner`` (lookat in m, angles in degrees)."""

_SIM_HINT = "pip install 'liv[sim]' (metaworld==3.1.1, mujoco==3.3.0, gymnasium)"


def _import_metaworld():
    """Import mujoco and metaworld, choosing headless EGL rendering unless the user picked a backend."""
    rendering.choose_gl()
    try:
        import metaworld  # noqa: F401  (registers the environments)
        import mujoco
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        from metaworld.policies import ENV_POLICY_MAP
    except ImportError as e:
        raise ImportError(f"Meta-World simulation needs optional packages ({e}); install them with: "
                          f"{_SIM_HINT}") from e
    return mujoco, ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE, ENV_POLICY_MAP


def available_tasks() -> list[str]:
    """Every Meta-World v3 task name (``drawer-open-v3``, ...); annotated ones are in :data:`TASKS`."""
    _, envs, _ = _import_metaworld()
    return sorted(k.removesuffix("-goal-observable") for k in envs)


@dataclass(frozen=True)
class SimState:
    """A saved environment state (from :meth:`MetaWorldEnv.get_state`); restore it into an env of the same
    task and seed.

    ``physics``: MuJoCo's full integration state (mjSTATE_INTEGRATION: time, qpos, qvel, act, warm-start
    accelerations, controls, mocap poses, ...) as float64, enough for a bit-identical continuation;
    ``obs``: the (39,) float64 observation at that point; ``prev_obs``: Meta-World's (18,) frame-stack
    half; ``steps``: steps since reset; ``layout``: the object/goal random vector, to catch restoring
    into a different layout.
    """

    task: str
    physics: np.ndarray
    obs: np.ndarray
    prev_obs: np.ndarray
    steps: int
    layout: np.ndarray


class MetaWorldEnv:
    """One Meta-World v3 task in a fixed seeded layout, rendered offscreen (use :func:`make_env`).

    Observations are Meta-World's (39,) float64 vectors: hand xyz (m), gripper opening in [0, 1], up to
    14 object values (positions, quaternions), the previous step's 18 values, the goal xyz. Actions are
    (4,) in [-1, 1] (see :data:`ACTION_NAMES`), clipped here. One step is 5 physics steps of 2.5 ms
    (``dt`` = 12.5 ms, ``fps`` = 80); Meta-World truncates an episode after 500 steps.
    """

    def __init__(self, task: str, seed: int, camera: str = "corner", size: tuple[int, int] = DEFAULT_SIZE):
        mujoco, envs, policies = _import_metaworld()
        key = f"{task}-goal-observable"
        if key not in envs:
            raise ValueError(f"unknown Meta-World v3 task {task!r}; known: {', '.join(available_tasks())}")
        height, width = (int(v) for v in size)
        if height < 2 or width < 2:
            raise ValueError(f"size must be (height, width) of at least 2 px, got {size!r}")
        self.task, self.seed, self.camera, self.size = task, int(seed), camera, (height, width)
        self.text = TASKS[task].text if task in TASKS else task
        self._mujoco = mujoco
        self._policies_table = policies
        self._policies: dict[str, Any] = {}  # scripted policies by task, made on first use
        self._camera: rendering.Camera | None = None
        # The goal-observable variant draws the layout from `seed` at construction and then freezes it,
        # so every reset() restores the same objects and goal; the goal is in the observation, which the
        # scripted policies read.
        self._env = envs[key](seed=self.seed)
        model = self._env.model
        if camera not in VIRTUAL_CAMERAS and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
            names = [model.camera(i).name for i in range(model.ncam)] + list(VIRTUAL_CAMERAS)
            self._env.close()
            raise ValueError(f"no camera {camera!r} in {task}; cameras: {', '.join(names)}")
        # Multisampling is fixed when the GL context is made, so it is switched off before the renderer
        # exists; the offscreen buffer (640x480 in Meta-World's models) must hold the requested size.
        rendering.prepare_model(model, (height, width))
        self._obs: np.ndarray | None = None
        self._start_distance: float | None = None  # the task distance after reset()
        rendering.track(self)

    # ----------------------------------------------------------------------------------------- episode

    @property
    def dt(self) -> float:
        """Seconds of simulated time per step (0.0125)."""
        return float(self._env.dt)

    @property
    def fps(self) -> float:
        """Steps per simulated second (80)."""
        return 1.0 / self.dt

    @property
    def action_dim(self) -> int:
        """Values per action (4: see ACTION_NAMES)."""
        return len(ACTION_NAMES)

    @property
    def max_steps(self) -> int:
        """Steps after which Meta-World truncates an episode (500)."""
        return int(self._env.max_path_length)

    def reset(self) -> np.ndarray:
        """Start an episode in this env's layout -> the first (39,) float64 observation."""
        if self._env is None:
            raise RuntimeError("the environment is closed")
        self._env.reset()
        # Some tasks' reset moves joints after Meta-World's last forward pass (window-close-v3 opens its
        # window by 0.2 m there), so its observation and body positions still showed the old pose: the
        # first frame looked solved. Recompute them; the first _get_obs() fills the frame-stack half.
        self._mujoco.mj_forward(self._env.model, self._env.data)
        self._env._get_obs()
        self._obs = np.asarray(self._env._get_obs(), dtype=np.float64).copy()
        self._start_distance = self._distance()  # progress() is relative to it
        return self._obs.copy()

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply a (4,) action in [-1, 1] (clipped) -> (obs (39,), reward, terminated, truncated, info).

        ``reward``: Meta-World's v2 shaped reward in [0, 10]; ``terminated`` is always False (Meta-World
        never ends an episode on success); ``truncated``: the 500th step; ``info["success"]``: bool.
        """
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if a.shape != (4,):
            raise ValueError(f"action must have 4 values (dx, dy, dz, grip), got shape {np.shape(action)}")
        if self._env.curr_path_length >= self._env.max_path_length:
            raise RuntimeError(f"the episode was truncated after {self.max_steps} steps; call reset()")
        obs, reward, terminated, truncated, info = self._env.step(a)
        self._obs = np.asarray(obs, dtype=np.float64).copy()
        info = {**info, "success": bool(info.get("success", False))}
        return self._obs.copy(), float(reward), bool(terminated), bool(truncated), info

    def is_success(self) -> bool:
        """Whether the current state solves the task (Meta-World's success test, no step taken)."""
        if self._obs is None:
            raise RuntimeError("call reset() first")
        _, info = self._env.evaluate_state(self._obs, np.zeros(4))
        return bool(info["success"])

    def _distance(self) -> float:
        """The task object's distance to where the task puts it (m; for reach-v3, the hand's): Meta-World's
        own ``obj_to_target``, except where that is a constant 0 (door-open-v3: the handle's x distance
        to the target, the quantity its success test thresholds at 0.08 m)."""
        if self.task == "door-open-v3":
            return float(abs(self._obs[4] - self._env._target_pos[0]))
        _, info = self._env.evaluate_state(self._obs, np.zeros(4))
        return float(info["obj_to_target"])

    def progress(self) -> float:
        """Task progress of the current state in [0, 1]: the fraction of the episode's start distance
        covered, max(0, 1 - d / d_start) (1 with the object at its target; Meta-World's success radius is
        reached before 1, at ~0.5-0.9 depending on the task). Raises RuntimeError before reset() and
        ValueError for a task whose start distance is 0 (no progress to measure; none of the annotated
        tasks, whose start distances are 0.03-0.56 m)."""
        if self._obs is None or self._start_distance is None:
            raise RuntimeError("call reset() first")
        d0 = self._start_distance
        if d0 <= 1e-9:
            raise ValueError(f"{self.task}: the object starts at its target (Meta-World's obj_to_target is 0), "
                             "so its progress is undefined")
        return float(np.clip(1.0 - self._distance() / d0, 0.0, 1.0))

    def proprio(self, obs: np.ndarray | None = None) -> np.ndarray:
        """Proprioceptive state of ``obs`` (default: the current one) -> (4,) float32, see STATE_NAMES."""
        obs = self._obs if obs is None else np.asarray(obs)
        if obs is None:
            raise RuntimeError("call reset() first")
        return np.asarray(obs[:4], dtype=np.float32)

    def expert_action(self, obs: np.ndarray | None = None, task: str | None = None) -> np.ndarray:
        """Meta-World's scripted expert's action for ``obs`` (default: current) -> (4,) float32 in [-1, 1].

        ``task``: whose expert acts (default: this env's task). The expert of the same scene's opposite
        task (``TaskSpec.opposite``, e.g. drawer-close in a drawer-open scene) reads the same observation
        layout and makes a plausible-looking failure. Raises ValueError for a task without a policy."""
        task = task or self.task
        if task not in self._policies:
            if self._policies_table.get(task) is None:
                raise ValueError(f"Meta-World has no scripted policy for {task}")
            self._policies[task] = self._policies_table[task]()
        obs = self._obs if obs is None else np.asarray(obs, dtype=np.float64)
        if obs is None:
            raise RuntimeError("call reset() first")
        with warnings.catch_warnings():
            # The policies warn whenever a gain saturates the [-1, 1] action range: on most steps.
            warnings.simplefilter("ignore")
            action = self._policies[task].get_action(obs)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)

    # ---------------------------------------------------------------------------------------- rendering

    def render(self) -> np.ndarray:
        """The current scene from ``camera`` -> (H, W, 3) uint8 RGB, upright. Raises RuntimeError if black."""
        if self._env is None:
            raise RuntimeError("the environment is closed")
        if self._camera is None:
            self._camera = rendering.Camera(self._mujoco, self._env.model, self.size,
                                            VIRTUAL_CAMERAS.get(self.camera, self.camera),
                                            flip=self.camera in FLIPPED_CAMERAS, label=self.task)
        return self._camera.render(self._env.data)

    # ------------------------------------------------------------------------------------ save / restore

    def get_state(self) -> SimState:
        """Save the current state -> :class:`SimState` (copies; later steps do not change it)."""
        if self._obs is None:
            raise RuntimeError("call reset() first")
        mujoco, env = self._mujoco, self._env
        physics = rendering.save_physics(mujoco, env.model, env.data)
        return SimState(self.task, physics, self._obs.copy(), np.array(env._prev_obs, dtype=np.float64),
                        int(env.curr_path_length), np.array(env._last_rand_vec, dtype=np.float64))

    def set_state(self, state: SimState) -> np.ndarray:
        """Restore a state saved by :meth:`get_state` of an env with the same task and seed -> its (39,) obs.

        Stepping after a restore continues exactly (bit for bit) as it did after the save.
        """
        mujoco, env = self._mujoco, self._env
        if state.task != self.task or not np.array_equal(state.layout, env._last_rand_vec):
            raise ValueError(f"the state was saved from {state.task} with another object/goal layout; restore "
                             f"it into an env made with the same task and seed (this is {self.task}, seed "
                             f"{self.seed})")
        rendering.restore_physics(mujoco, env.model, env.data, state.physics)
        env._prev_obs = state.prev_obs.copy()
        env.curr_path_length = state.steps
        env._did_see_sim_exception = False
        self._obs = state.obs.copy()
        return self._obs.copy()

    # ------------------------------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Free the renderer's OpenGL context and the simulation; the env cannot be used afterwards."""
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        if self._env is not None:
            self._env.close()
            self._env = None
        self._obs = None  # step() and friends now ask for reset(), which reports the env closed
        rendering.untrack(self)

    def __enter__(self) -> MetaWorldEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MetaWorldEnv({self.task!r}, seed={self.seed}, camera={self.camera!r}, size={self.size})"


def make_env(task: str, seed: int, camera: str = "corner", size: tuple[int, int] = DEFAULT_SIZE) -> MetaWorldEnv:
    """A Meta-World v3 environment for ``task`` whose object and goal positions are drawn from ``seed``.

    ``camera``: a camera of the scene (corner, corner2, corner3, corner4, topview, behindGripper,
    gripperPOV) or one of :data:`VIRTUAL_CAMERAS` (closeup); ``size``: (height, width) of rendered
    frames in pixels. The same seed always gives the
    same layout, different seeds (almost surely) different ones. Close the env when done (or use it as
    a context manager): each holds an OpenGL context.
    """
    return MetaWorldEnv(task, seed, camera=camera, size=size)
