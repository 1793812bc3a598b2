"""Scripted experts of the kitchen tasks: a joint-space dash to the task object, then inverse kinematics.

Each task is a short script of stages (:data:`SCRIPTS`). The first stage moves the arm in joint space
straight to a posture found once by inverse kinematics (:func:`_solve_posture`) with the hand a few cm in
front of the object: the joints are the arm's speed limit (~0.9 rad/s each under these actuators), and a
straight line in joint space is the fastest way there, while a straight line of the hand can need a joint
to go out and come back. The objects always start closed, so that posture is the same for every seed.
The next stages are damped least-squares steps of the hand (:class:`~liv.sim.kitchen.ik.HandController`)
to targets computed from the simulation each step (handle sites, hinge anchors, joint angles): in to the
handle, close the fingers, then along the object's path, a little ahead of where the object is, until
its joint is past the goal (:data:`~liv.sim.kitchen.tasks.GOALS`).

Every task grasps or straddles a bar with the fingers apart horizontally: the handles of the microwave,
the slide cabinet and the left door are vertical bars, knob 1's fin is vertical, and the light switch's
lever points at the robot. The hand points into the kitchen (+y), turned towards the hinge for the two
hinged doors so that their pull presses the bar across a finger rather than along the fingers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from liv.sim.kitchen.ik import HandController, rot_y, rot_z
from liv.sim.kitchen.tasks import GOALS

NOMINAL_START = (0.1484, -1.7685, 1.8439, -2.4769, 0.2603, 0.7125, 1.5952)
"""The 7 arm joints (rad) of FrankaKitchen-v1's start pose (liv's env adds a seeded offset to them)."""
POINT_FORWARD = np.column_stack([(0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)])
"""The hand pointing into the kitchen (+y) with the fingers apart along x, as at the start (columns: the
end_effector site's axes in the world)."""
JOINT_SPEED = 0.07
"""Joint step (rad) asked for per step in the joint-space dash: about what a full action moves the big joints."""
OPEN, CLOSE = 1.0, -1.0
"""Finger actions: + opens (the fingers go to 4 cm each), - closes."""


class _Sim:
    """What the scripts read off the simulation: sites, joint angles, hinge anchors."""

    def __init__(self, model, data):
        self.model, self.data = model, data

    def site(self, name: str) -> np.ndarray:
        return self.data.site(name).xpos.copy()

    def joint(self, name: str) -> float:
        return float(self.data.qpos[self.model.jnt_qposadr[self.model.joint(name).id]])

    def anchor(self, name: str) -> np.ndarray:
        return self.data.xanchor[self.model.joint(name).id].copy()


Target = Callable[[_Sim], tuple[np.ndarray, np.ndarray]]
"""A stage's hand target from the simulation: (position (3,) m, orientation (3, 3))."""


@dataclass(frozen=True)
class Stage:
    """One stage of a script: bring the hand to ``target`` with fingers ``fingers`` (+1 open, -1 close).

    ``dash``: move in joint space to the posture solving the target at the closed scene (see module doc).
    Done when the hand is within ``tolerance`` m of the target or after ``budget`` steps; a stage with
    ``budget`` None is the last and never ends. ``turn_weight``: m worth 1 rad of orientation error.
    ``twist``: roll the hand this much a step and hold only its position (the orientation is free)."""

    target: Target
    fingers: float
    tolerance: float = 0.02
    budget: int | None = 20
    dash: bool = False
    turn_weight: float = 0.2
    twist: float = 0.0  # rad per step of joint 7 (the hand's roll) on top of a position-only step


def _at(site: str, offset=(0.0, 0.0, 0.0), yaw: float = 0.0) -> Target:
    """The target ``offset`` (m, world) from ``site``, the hand turned by ``yaw`` rad about z."""
    rotation = rot_z(yaw) @ POINT_FORWARD
    return lambda sim: (sim.site(site) + np.asarray(offset), rotation)


def _door(joint: str, site: str, yaw0: float, back: float, dz: float = 0.0, lead: float = 0.0) -> Target:
    """A point on the handle bar's circle about the vertical hinge ``joint``: ``back`` m out from the bar
    along the door's normal (towards the robot) and ``dz`` m below ``site``, ``lead`` rad ahead of the
    door's angle (negative: opening). The hand points along the door's inward normal; ``yaw0`` (rad) is
    the closed door's yaw."""

    def target(sim: _Sim):
        angle = sim.joint(joint)
        hinge = sim.anchor(joint)
        arm = sim.site(site) - hinge
        yaw = yaw0 + angle + lead
        arm = rot_z(lead) @ arm
        inward = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
        return hinge + arm - back * inward + np.array([0.0, 0.0, dz]), rot_z(yaw) @ POINT_FORWARD

    return target


def _knob(back: float, turn: float | None = None) -> Target:
    """``back`` m in front of knob 1's fin, on the knob's axis, the hand rolled with the knob (None) or to
    the knob angle ``turn`` rad (the knob turns about -y: on is negative, the hand turns about +y)."""

    def target(sim: _Sim):
        center = sim.anchor("knob_Joint_1")
        point = np.array([center[0], sim.site("knob1_site")[1] - back, center[2]])
        angle = sim.joint("knob_Joint_1") if turn is None else turn
        return point, rot_y(-angle) @ POINT_FORWARD

    return target


def _lever(back: float, turn: float | None = None) -> Target:
    """``back`` m towards the robot from the light switch's lever site, carried round the switch's vertical
    hinge to the angle ``turn`` rad (None: where the lever is; on is negative, the lever's end goes to -x)."""

    def target(sim: _Sim):
        hinge = sim.anchor("light_switch")
        point = sim.site("light_site") - hinge
        point[1] -= back
        return hinge + rot_z(0.0 if turn is None else turn - sim.joint("light_switch")) @ point, POINT_FORWARD

    return target


def _slide(dz: float, push: float, back: float = 0.0) -> Target:
    """``dz`` m below the slide cabinet's handle site, ``push`` m further along the slide (+x) and
    ``back`` m towards the robot."""
    return lambda sim: (sim.site("slide_site") + np.array([push, -back, dz]), POINT_FORWARD)


# The hand's yaw (rad, closed door) at the microwave's bar: the door's normal is turned 0.3 rad, the hand
# 0.9 rad more towards the hinge. Pointing along the normal, the pull runs along the channel between the
# fingers and only the pinch's friction holds the bar, which slid out at ~-0.3 rad; turned ~50 degrees
# off it, the pull presses the bar across the hinge-side finger and friction is not needed to hold it.
_MICRO_YAW = 1.2
_MICRO_DZ = 0.10  # grasp the microwave's bar 10 cm above its middle: the low handle is at the edge of reach
_LDOOR_YAW = 1.1  # the same for the left door (its normal is turned 0.006 rad): a pull along it slipped
_LDOOR_DZ = -0.04  # grasp the left door's bar 4 cm below its middle: lower is nearer the shoulder
# How far the hand's site goes past the bar's axis (negative "back"): the finger pads run from the site to
# 5 cm beyond it, so the bar sits mid-pad 2.5 cm in; the microwave's door is only 5.8 cm behind its bar.
_LDOOR_IN, _MICRO_IN = -0.025, -0.005

SCRIPTS: dict[str, tuple[Stage, ...]] = {
    # Grasp the microwave's handle bar (radius 2 cm, 3.8 cm in front of the door), the hand turned
    # towards the hinge (_MICRO_YAW), and pull it round the hinge.
    "kitchen_micro_open": (
        Stage(_door("microwave", "microhandle_site", _MICRO_YAW, 0.08, _MICRO_DZ), OPEN, 0.04, 40, dash=True),
        Stage(_door("microwave", "microhandle_site", _MICRO_YAW, _MICRO_IN, _MICRO_DZ), OPEN, 0.012, 15),
        Stage(_door("microwave", "microhandle_site", _MICRO_YAW, _MICRO_IN, _MICRO_DZ), CLOSE, 1.0, 3),
        Stage(_door("microwave", "microhandle_site", _MICRO_YAW, _MICRO_IN, _MICRO_DZ, lead=-0.3), CLOSE, budget=None),
    ),
    # Grasp the slide cabinet's bar low and pull it right (+x).
    "kitchen_sdoor_open": (
        Stage(_slide(-0.08, 0.0, 0.08), OPEN, 0.04, 40, dash=True),
        Stage(_slide(-0.08, 0.0), OPEN, 0.012, 15),
        Stage(_slide(-0.08, 0.0), CLOSE, 1.0, 3),
        Stage(_slide(-0.08, 0.10), CLOSE, budget=None),
    ),
    # The same as the microwave for the left door's bar, grasped low.
    "kitchen_ldoor_open": (
        Stage(_door("left_hinge_cabinet", "hinge_site1", _LDOOR_YAW, 0.08, _LDOOR_DZ), OPEN, 0.04, 40, dash=True),
        # Cut short: after 5 steps the site is ~2 cm before the bar's axis, the bar already between the
        # fingers (they reach 5 cm past the site); the rest of the way in would take ~10 steps more.
        Stage(_door("left_hinge_cabinet", "hinge_site1", _LDOOR_YAW, _LDOOR_IN, _LDOOR_DZ), OPEN, 0.012, 5),
        Stage(_door("left_hinge_cabinet", "hinge_site1", _LDOOR_YAW, _LDOOR_IN, _LDOOR_DZ), CLOSE, 1.0, 3),
        Stage(_door("left_hinge_cabinet", "hinge_site1", _LDOOR_YAW, _LDOOR_IN, _LDOOR_DZ, lead=-0.35), CLOSE,
              budget=None),
    ),
    # Grasp knob 1's fin (2.8 cm wide) between the fingertips and roll the hand about the knob's axis.
    "kitchen_knob1_on": (
        Stage(_knob(0.09), OPEN, 0.04, 40, dash=True),
        Stage(_knob(0.04), OPEN, 0.01, 15),
        Stage(_knob(0.04), CLOSE, 1.0, 3),
        # Roll the hand with joint 7 (its axis is the hand's, ~0.3 rad off the knob's: joint 6 is at its
        # limit here); 0.09 rad a step is about the fastest joint 7 follows.
        Stage(_knob(0.04), CLOSE, budget=None, twist=0.09),
    ),
    # Straddle the light switch's lever with the open fingers and carry it round to the left.
    "kitchen_light_on": (
        Stage(_lever(0.09), OPEN, 0.04, 40, dash=True),
        Stage(_lever(0.02), OPEN, 0.012, 15),
        # Aim past the switch's end stop (-0.7 rad; the goal is -0.69): the hand pushes with all it has.
        Stage(_lever(0.02, turn=-1.5), OPEN, budget=None),
    ),
}


_POSTURES: dict[tuple[str, int], np.ndarray] = {}


def _solve_posture(mujoco, model, data, target: np.ndarray, rotation: np.ndarray,
                   iterations: int = 200) -> np.ndarray:
    """(7,) arm joints (rad) with the hand at ``target`` (3,) m and ``rotation`` (3, 3), found by damped
    least squares from NOMINAL_START on a scratch copy of ``data`` (the objects as they are in it)."""
    scratch = mujoco.MjData(model)
    scratch.qpos[:] = data.qpos
    scratch.qpos[:7] = NOMINAL_START
    control = HandController(mujoco, model, NOMINAL_START)
    for _ in range(iterations):
        mujoco.mj_kinematics(model, scratch)
        mujoco.mj_comPos(model, scratch)
        scratch.qpos[:7] += control.joint_step(scratch, target, rotation, 0.3, max_step=0.1)
    return scratch.qpos[:7].copy()


class KitchenExpert:
    """The scripted expert of one kitchen task; ``act(data)`` -> (9,) float32 action in [-1, 1].

    Deterministic: an action depends on the simulation state and the phase (stage, steps in it) only;
    get_phase / set_phase save and restore the phase with the environment's state."""

    def __init__(self, task: str, mujoco, model):
        if task not in SCRIPTS:
            raise ValueError(f"no scripted expert for {task!r}; experts: {', '.join(SCRIPTS)}")
        self.task, self._mujoco, self._model = task, mujoco, model
        self._script = SCRIPTS[task]
        self._joint, self._goal = GOALS[task]
        self._control = HandController(mujoco, model, NOMINAL_START)
        self._stage, self._steps = 0, 0

    def get_phase(self) -> tuple[int, int]:
        """The phase: (stage index, steps taken in the stage)."""
        return self._stage, self._steps

    def set_phase(self, phase) -> None:
        self._stage, self._steps = int(phase[0]), int(phase[1])

    @property
    def stage(self) -> Stage:
        return self._script[self._stage]

    def act(self, data) -> np.ndarray:
        """The action (9,) float32 in [-1, 1] for the simulation state ``data``; advances the phase."""
        # After mj_step, data's positions, Jacobians and bias forces are those of the last substep's start;
        # after env.set_state they are the current state's. Recompute them so that the action depends on
        # the state alone (these two leave the solver's warm start, hence the physics, alone).
        self._mujoco.mj_fwdPosition(self._model, data)
        self._mujoco.mj_fwdVelocity(self._model, data)
        sim = _Sim(self._model, data)
        while True:
            stage = self.stage
            target, rotation = stage.target(sim)
            if stage.budget is None:
                break
            near = float(np.linalg.norm(target - data.site_xpos[self._control._site])) < stage.tolerance
            if not (near or self._steps >= stage.budget):
                break
            self._stage, self._steps = self._stage + 1, 0
        self._steps += 1
        if stage.dash:
            dq = self._posture(data, target, rotation) - data.qpos[:7]
            longest = float(np.max(np.abs(dq)))
            if longest > JOINT_SPEED:
                dq *= JOINT_SPEED / longest
        elif stage.twist:
            dq = self._control.joint_step(data, target, None, 0.0)
            dq[6] += stage.twist
        else:
            dq = self._control.joint_step(data, target, rotation, stage.turn_weight)
        return self._control.action(data, dq, stage.fingers)

    def _posture(self, data, target, rotation) -> np.ndarray:
        key = (self.task, self._stage)
        if key not in _POSTURES:
            _POSTURES[key] = _solve_posture(self._mujoco, self._model, data, target, rotation)
        return _POSTURES[key]


_APPROACH: dict[str, np.ndarray] = {}


def approach_actions(task: str) -> np.ndarray:
    """The expert's actions from the scene's nominal start (no random offset) until the hand is at the
    task object, before it grasps, pushes or pulls -> (K, 9) float32; computed once per task, cached."""
    if task not in _APPROACH:
        from liv.sim.kitchen.env import KitchenEnv

        with KitchenEnv(task, 0, size=(8, 8)) as env:
            env._start[:7] = NOMINAL_START
            env.reset()
            actions = []
            for _ in range(env.max_steps):
                action = env.expert_action()
                stage = env._expert.stage
                if stage.budget is None or stage.fingers == CLOSE:
                    break  # the approach ends where the task's motion (or the grasp) begins
                actions.append(action)
                env.step(action)
        _APPROACH[task] = np.asarray(actions, dtype=np.float32).reshape(-1, 9)
    return _APPROACH[task].copy()
