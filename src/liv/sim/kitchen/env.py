"""The paper's FrankaKitchen tasks on Gymnasium-Robotics' FrankaKitchen-v1 scene, offline and on a CPU.

``make_env(task, seed)`` builds the FrankaKitchen-v1 kitchen (its MuJoCo model and its robot controller:
an action is 9 joint velocities in [-1, 1], scaled by 2 rad/s and turned into joint position targets, 40
physics steps of 2 ms per step) with the observation noise off, so that a seed fixes an episode; the arm's
start is drawn from ``seed`` (:data:`ARM_START_RANGE` about the scene's start pose), objects start closed.
The robot stands 10 cm left of FrankaKitchen-v1's place (:data:`BASE_OFFSET`) so that the left door is in reach.
Success is tested on the task object's joint (tasks.GOALS), not with FrankaKitchen-v1's loose 0.3
tolerance. Frames come from cameras defined here (:data:`VIRTUAL_CAMERAS`; the package's XML is not
edited) with shadows, reflections and multisampling off (:mod:`liv.sim.rendering`).

gymnasium-robotics, MuJoCo and Gymnasium are optional (``pip install 'liv[sim]'``), imported on first use.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from liv.sim import rendering
from liv.sim.kitchen.tasks import ACTION_NAMES, CAMERAS, DEFAULT_SIZE, EPISODE_STEPS, GOALS, STATE_NAMES, TASKS  # noqa: F401

VIRTUAL_CAMERAS: dict[str, dict[str, Any]] = {
    "overview": {"lookat": (-0.4, 0.45, 2.15), "distance": 1.9, "azimuth": 90.0, "elevation": -25.0},
    "closeup": {"lookat": (-0.45, 0.5, 2.2), "distance": 1.45, "azimuth": 95.0, "elevation": -20.0},
}
"""Free cameras (lookat in m, angles in degrees) looking at the kitchen from behind the robot: ``overview``
shows the arm, the microwave, the stove knobs, the light switch, the slide cabinet and the hinge cabinet;
``closeup`` crops to the objects (the microwave's left edge and the slide cabinet's right end leave it)."""
BASE_OFFSET = (-0.1, 0.0, 0.0)
"""World offset (m) of the robot's base from FrankaKitchen-v1's: 10 cm to the left. From FrankaKitchen-v1's
base the left door's handle is ~6 cm beyond the arm's reach even closed (damped least-squares IK from 40
random postures, measured here) and moves away as the door opens; from here every task's handle is in
reach along its whole path."""
ARM_START_RANGE = 0.1
"""Half-width (rad) of the uniform offset drawn from the seed for each of the 7 arm joints at the start."""
OBJECT_JOINTS = ("knob_Joint_1", "knob_Joint_2", "knob_Joint_3", "knob_Joint_4", "light_switch", "slide_cabinet",
                 "left_hinge_cabinet", "right_hinge_cabinet", "microwave")
"""The scene's articulated objects' joints reported by :meth:`KitchenEnv.object_states`."""
ARM_VISUAL_FACES = 130_000
"""About how many triangles the Franka's visual meshes have (its collision meshes: ~2,000); see _coarse_arm."""
_SIM_HINT = "pip install 'liv[sim]' (gymnasium-robotics>=1.4, mujoco==3.3.0, gymnasium)"


def _import_kitchen():
    """Import mujoco and Gymnasium-Robotics' kitchen, choosing headless EGL unless the user picked a backend."""
    rendering.choose_gl()
    try:
        import mujoco

        # gymnasium_robotics prints a notice about its Adroit tasks' rewards to stderr on import: not ours.
        with contextlib.redirect_stderr(io.StringIO()):
            from gymnasium_robotics.envs.franka_kitchen.kitchen_env import KitchenEnv as FrankaKitchen
    except ImportError as e:
        raise ImportError(f"the kitchen suite needs optional packages ({e}); install them with: {_SIM_HINT}") from e
    return mujoco, FrankaKitchen


@dataclass(frozen=True)
class KitchenState:
    """A saved kitchen state (:meth:`KitchenEnv.get_state`): MuJoCo's integration state (float64), the
    controller's joint reference (the last observed 9 robot joint positions), steps since reset, and the
    expert's phase."""

    task: str
    seed: int
    physics: np.ndarray
    reference: np.ndarray
    steps: int
    expert: Any


class KitchenEnv:
    """One kitchen task from a seeded arm start, rendered offscreen (use :func:`make_env`).

    Observations are FrankaKitchen-v1's (59,) float64 vectors without noise: 9 robot joint positions, 9
    robot joint velocities, 21 object positions, 20 object velocities. Actions are (9,) in [-1, 1] (see
    ACTION_NAMES), clipped here.
    """

    def __init__(self, task: str, seed: int, camera: str = "overview", size: tuple[int, int] = DEFAULT_SIZE,
                 detailed_arm: bool = False):
        if task not in TASKS:
            raise ValueError(f"unknown kitchen task {task!r}; tasks: {', '.join(TASKS)}")
        if camera not in CAMERAS:
            raise ValueError(f"no camera {camera!r} in the kitchen; cameras: {', '.join(CAMERAS)}")
        height, width = (int(v) for v in size)
        if height < 2 or width < 2:
            raise ValueError(f"size must be (height, width) of at least 2 px, got {size!r}")
        mujoco, franka_kitchen = _import_kitchen()
        self.task, self.seed, self.camera, self.size = task, int(seed), camera, (height, width)
        self.text = TASKS[task].text
        self._mujoco = mujoco
        self._kitchen = franka_kitchen(tasks_to_complete=["microwave"], robot_noise_ratio=0.0,
                                       object_noise_ratio=0.0)
        self._robot = self._kitchen.robot_env
        self.model, self.data = self._robot.model, self._robot.data
        rendering.prepare_model(self.model, (height, width))
        if not detailed_arm:
            _coarse_arm(self.model)
        base = self.model.body("panda0_link0").id
        parent = np.empty(9)
        mujoco.mju_quat2Mat(parent, self.model.body_quat[self.model.body_parentid[base]])
        self.model.body_pos[base] += parent.reshape(3, 3).T @ np.asarray(BASE_OFFSET)
        joint, self.goal = GOALS[task]
        self._goal_qpos = int(self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, joint)])
        self._object_qpos = {name: int(self.model.jnt_qposadr[self.model.joint(name).id]) for name in OBJECT_JOINTS}
        rng = np.random.default_rng(self.seed)
        self._start = np.array(self._robot.init_qpos, dtype=np.float64).copy()
        self._start[:7] += rng.uniform(-ARM_START_RANGE, ARM_START_RANGE, 7)
        self._start[:7] = np.clip(self._start[:7], self.model.jnt_range[:7, 0], self.model.jnt_range[:7, 1])
        self._camera: rendering.Camera | None = None
        self._expert = None
        self._steps = -1
        rendering.track(self)

    # ----------------------------------------------------------------------------------------- episode

    @property
    def dt(self) -> float:
        """Seconds of simulated time per step (0.08)."""
        return float(self._robot.dt)

    @property
    def action_dim(self) -> int:
        """Values per action (9: see ACTION_NAMES)."""
        return len(ACTION_NAMES)

    @property
    def max_steps(self) -> int:
        """Steps after which an episode is truncated (tasks.EPISODE_STEPS: 100)."""
        return EPISODE_STEPS

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:9], self.data.qvel[:9], self.data.qpos[9:], self.data.qvel[9:]])

    def reset(self) -> np.ndarray:
        """Start an episode from this env's seeded arm start -> the first (59,) float64 observation."""
        if self._kitchen is None:
            raise RuntimeError("the environment is closed")
        mujoco = self._mujoco
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self._start
        self.data.qvel[:] = 0.0
        # Position actuators hold their target: start them at the start pose, not at 0.
        self.data.ctrl[:] = self._start[:9]
        mujoco.mj_forward(self.model, self.data)
        self._robot._last_robot_qpos = self.data.qpos[:9].copy()  # the controller's reference
        self._steps = 0
        self._expert = None
        return self._obs()

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply a (9,) action in [-1, 1] (clipped) -> (obs (59,), reward, terminated, truncated, info).

        ``reward``: the task's progress (:meth:`progress`); ``terminated`` is always False;
        ``truncated``: the max_steps-th step; ``info``: ``success`` (bool), ``progress`` (float).
        """
        if self._steps < 0:
            raise RuntimeError("call reset() before step()")
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        if a.shape != (9,):
            raise ValueError(f"action must have 9 values (joint velocities), got shape {np.shape(action)}")
        self._robot.step(a)
        # FrankaKitchen-v1 reads its next position targets off the observation; noise-free, that is qpos.
        self._robot._last_robot_qpos = self.data.qpos[:9].copy()
        self._steps += 1
        progress = self.progress()
        return self._obs(), progress, False, self._steps >= self.max_steps, {"success": self.is_success(),
                                                                             "progress": progress}

    def task_value(self) -> float:
        """The task joint's current position (rad, or m for the slide cabinet)."""
        return float(self.data.qpos[self._goal_qpos])

    def progress(self) -> float:
        """The task joint's fraction of the way from closed (0) to its goal, in [0, 1]."""
        return float(np.clip(self.task_value() / self.goal, 0.0, 1.0))

    def is_success(self) -> bool:
        """Whether the task joint has reached its goal (tasks.GOALS), no step taken."""
        if self._steps < 0:
            raise RuntimeError("call reset() first")
        return self.progress() >= 1.0

    def object_states(self) -> dict[str, float]:
        """Every articulated object's joint position (OBJECT_JOINTS; rad, m for the slide cabinet)."""
        return {name: float(self.data.qpos[i]) for name, i in self._object_qpos.items()}

    def proprio(self, obs: np.ndarray | None = None) -> np.ndarray:
        """Proprioceptive state of ``obs`` (default: the current one) -> (9,) float32, see STATE_NAMES."""
        q = self.data.qpos[:9] if obs is None else np.asarray(obs)[:9]
        return np.asarray(q, dtype=np.float32)

    def expert_action(self, obs: np.ndarray | None = None) -> np.ndarray:
        """The scripted expert's action in the current state -> (9,) float32 in [-1, 1] (``obs`` is unused:
        the expert reads the simulation)."""
        from liv.sim.kitchen.expert import KitchenExpert

        if self._steps < 0:
            raise RuntimeError("call reset() first")
        if self._expert is None:
            self._expert = KitchenExpert(self.task, self._mujoco, self.model)
        return self._expert.act(self.data)

    def approach_actions(self) -> np.ndarray:
        """The paper's MPPI warm start: a fixed open-loop sequence that brings the hand from the scene's
        nominal start near the task object without doing the task -> (K, 9) float32."""
        from liv.sim.kitchen.expert import approach_actions

        return approach_actions(self.task)

    # ---------------------------------------------------------------------------------------- rendering

    def render(self) -> np.ndarray:
        """The current scene from ``camera`` -> (H, W, 3) uint8 RGB, upright. Raises RuntimeError if black."""
        if self._kitchen is None:
            raise RuntimeError("the environment is closed")
        if self._camera is None:
            self._camera = rendering.Camera(self._mujoco, self.model, self.size,
                                            VIRTUAL_CAMERAS.get(self.camera, self.camera), label=self.task)
        return self._camera.render(self.data)

    # ------------------------------------------------------------------------------------ save / restore

    def get_state(self) -> KitchenState:
        """Save the current state -> :class:`KitchenState` (copies)."""
        if self._steps < 0:
            raise RuntimeError("call reset() first")
        mujoco = self._mujoco
        physics = rendering.save_physics(mujoco, self.model, self.data)
        expert = None if self._expert is None else self._expert.get_phase()
        return KitchenState(self.task, self.seed, physics, self._robot._last_robot_qpos.copy(), self._steps, expert)

    def set_state(self, state: KitchenState) -> np.ndarray:
        """Restore a state saved by :meth:`get_state` of an env with the same task -> its (59,) observation.

        Stepping after a restore continues exactly (bit for bit) as it did after the save."""
        if state.task != self.task:
            raise ValueError(f"the state was saved from {state.task}; this env is {self.task}")
        mujoco = self._mujoco
        rendering.restore_physics(mujoco, self.model, self.data, state.physics)
        self._robot._last_robot_qpos = state.reference.copy()
        self._steps = state.steps
        if state.expert is None:
            self._expert = None
        else:
            from liv.sim.kitchen.expert import KitchenExpert

            self._expert = KitchenExpert(self.task, self._mujoco, self.model)
            self._expert.set_phase(state.expert)
        return self._obs()

    # ------------------------------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Free the renderer's OpenGL context and the simulation; the env cannot be used afterwards."""
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        if self._kitchen is not None:
            self._kitchen.close()
            self._kitchen = None
        self._steps = -1
        rendering.untrack(self)

    def __enter__(self) -> KitchenEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KitchenEnv({self.task!r}, seed={self.seed}, camera={self.camera!r}, size={self.size})"


def make_env(task: str, seed: int, camera: str = "overview", size: tuple[int, int] = DEFAULT_SIZE,
             detailed_arm: bool = False) -> KitchenEnv:
    """A kitchen environment for ``task`` whose arm start is drawn from ``seed``.

    ``camera``: one of tasks.CAMERAS; ``size``: (height, width) of frames in pixels; ``detailed_arm``: draw
    the arm with its visual meshes instead of its collision meshes (see :func:`_coarse_arm`). Raises
    ValueError for an unknown task or camera, ImportError naming what to install when gymnasium-robotics
    is missing."""
    return KitchenEnv(task, seed, camera=camera, size=size, detailed_arm=detailed_arm)


def _coarse_arm(model) -> None:
    """Draw the arm with its collision meshes (geom group 3 -> 2, opaque) and hide its visual ones (0 -> 5).

    The visual meshes have ~ARM_VISUAL_FACES triangles, 20x the rest of the kitchen; on a software OpenGL
    renderer they took 12 of a frame's 20 ms at 128 px. Geom groups only choose what is drawn (collisions
    use contype/conaffinity), so the physics is unchanged."""
    for i in range(model.ngeom):
        if not model.body(int(model.geom_bodyid[i])).name.startswith("panda0"):
            continue
        if model.geom_group[i] == 0:
            model.geom_group[i] = 5
        elif model.geom_group[i] == 3:
            model.geom_group[i] = 2
            model.geom_rgba[i] = (0.9, 0.92, 0.88, 1.0)  # the visual meshes' off-white, opaque
