"""Differential inverse kinematics for the kitchen's Franka and the mapping of joint steps to its actions.

:class:`HandController` turns a hand target (a world position in m and a 3x3 orientation) into one
FrankaKitchen-v1 action: a damped least-squares step on the ``end_effector`` site's 6 x 7 Jacobian, kept
inside the joint limits, turned into the action that makes the position actuators follow it. The arm's
position targets are the measured joints plus action x 0.16 rad, so a zero action lets the arm sag: each
action carries the joints' bias forces over the actuators' gains (gravity feed-forward).
"""

from __future__ import annotations

import math

import numpy as np

ACTION_SCALE = 2.0 * 0.08
"""Joint position target offset (rad) of a full action: 2 rad/s for one 0.08 s step (FrankaKitchen-v1)."""
TRACKING_GAIN = 2.0
"""Joint steps are asked for twice over: with gains 870 N m/rad against damping 100 N m s/rad (the wrist:
120 against 10) a joint covers about half of a target offset within one 0.08 s step (measured)."""
VELOCITY_DAMPING = 0.6
"""Fraction of the joints' current velocity x step time taken off each step: they keep moving into the
next step, and without it the hand overshoots its targets by a few cm."""
MAX_HAND_STEP = 0.05
"""Hand displacement (m) asked for per step at most; with TRACKING_GAIN the hand moves ~0.5 m/s."""
MAX_TURN_STEP = 0.25
"""Hand rotation (rad) asked for per step at most."""
DAMPING = 2e-3
"""Damped least squares' lambda^2 (m^2): bounds the joint steps near singular postures."""
POSTURE_GAIN = 0.05
"""Fraction of the distance to the nominal posture taken per step in the Jacobian's null space: keeps the
elbow from drifting towards its limits over a long motion."""
PITCH_WEIGHT = 0.05
"""Weight of the orientation error about the hand's finger axis against the other two axes: the hand may
tilt up or down about the line through its fingertips (a vertical bar stays between the fingers), which
brings the low microwave handle and the high left door handle into reach."""
LIMIT_MARGIN = 0.05
"""Distance (rad) kept from each joint limit; the controller cannot command joint 6 below 0 (its
pos_bound in franka_config.xml), so that bound counts as a limit."""

# FrankaKitchen-v1 clips the 7 arm joints' position targets to these (franka_config.xml pos_bound),
# narrower than the model's joint ranges for joints 4 and 6; the tighter of both is used.
_TARGET_BOUNDS = np.array([[-2.9, 2.9], [-1.8, 1.8], [-2.9, 2.9], [-3.1, 0.0], [-2.9, 2.9], [0.0, 3.8],
                           [-2.9, 2.9]])


def rot_z(angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` rad about the world's vertical axis."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` rad about the world's y axis (into the kitchen)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3,) rotation vector (rad, world frame, small-angle form) turning ``current`` towards ``target``
    (both (3, 3), columns are the frame's axes)."""
    return 0.5 * (np.cross(current[:, 0], target[:, 0]) + np.cross(current[:, 1], target[:, 1])
                  + np.cross(current[:, 2], target[:, 2]))


class HandController:
    """Damped least-squares control of the ``end_effector`` site through FrankaKitchen-v1's joint-velocity
    actions. Stateless between calls: an action depends only on the simulation state and the target."""

    def __init__(self, mujoco, model, nominal: np.ndarray):
        self._mujoco, self._model = mujoco, model
        self._site = model.site("end_effector").id
        self._nominal = np.asarray(nominal, dtype=np.float64)[:7].copy()
        lo = np.maximum(model.jnt_range[:7, 0], _TARGET_BOUNDS[:, 0]) + LIMIT_MARGIN
        hi = np.minimum(model.jnt_range[:7, 1], _TARGET_BOUNDS[:, 1]) - LIMIT_MARGIN
        self._lo, self._hi = lo, hi
        self._gain = model.actuator_gainprm[:7, 0].copy()
        self._jp = np.zeros((3, model.nv))
        self._jr = np.zeros((3, model.nv))

    def hand(self, data) -> tuple[np.ndarray, np.ndarray]:
        """The hand's position (3,) m and orientation (3, 3) (copies)."""
        return data.site_xpos[self._site].copy(), data.site_xmat[self._site].reshape(3, 3).copy()

    def joint_step(self, data, target: np.ndarray, rotation: np.ndarray | None, turn_weight: float,
                   max_step: float = MAX_HAND_STEP) -> np.ndarray:
        """(7,) joint displacement (rad) moving the hand towards ``target`` (3,) m and ``rotation`` (3, 3)
        (None: any orientation). ``turn_weight``: m of position error worth 1 rad of orientation error;
        small where the exact orientation is out of reach and the position must win."""
        position = data.site_xpos[self._site]
        error = np.asarray(target, dtype=np.float64) - position
        distance = float(np.linalg.norm(error))
        if distance > max_step:
            error *= max_step / distance
        self._mujoco.mj_jacSite(self._model, data, self._jp, self._jr, self._site)
        if rotation is None:
            jac, err = self._jp[:, :7], error
        else:
            turn = rotation_error(data.site_xmat[self._site].reshape(3, 3), rotation)
            norm = float(np.linalg.norm(turn))
            if norm > MAX_TURN_STEP:
                turn *= MAX_TURN_STEP / norm
            # Turning about the target's finger axis (its y, across the bar) matters little for a bar
            # grasp: that part of the error (and of the Jacobian) weighs only PITCH_WEIGHT.
            axis = rotation[:, 1]
            weight = turn_weight * (np.eye(3) - (1.0 - PITCH_WEIGHT) * np.outer(axis, axis))
            jac = np.vstack([self._jp[:, :7], weight @ self._jr[:, :7]])
            err = np.concatenate([error, weight @ turn])
        gram = jac @ jac.T
        gram[np.diag_indices_from(gram)] += DAMPING
        pinv = jac.T @ np.linalg.inv(gram)
        q = data.qpos[:7]
        dq = pinv @ err
        dq += (np.eye(7) - pinv @ jac) @ (POSTURE_GAIN * (self._nominal - q))
        # Stay inside the limits: a joint step that would pass one is cut at it (the others keep theirs).
        return np.clip(q + dq, self._lo, self._hi) - q

    def action(self, data, dq: np.ndarray, fingers: float) -> np.ndarray:
        """FrankaKitchen-v1 action (9,) float32 in [-1, 1] that makes the arm take joint step ``dq`` (7,)
        rad; ``fingers``: finger velocity action (+1 opens, -1 closes)."""
        move = TRACKING_GAIN * dq - VELOCITY_DAMPING * 0.08 * data.qvel[:7]
        hold = data.qfrc_bias[:7] / self._gain  # the target offset that holds the arm against gravity
        # Past the action's range, shorten the whole step rather than clip joints one by one: clipping
        # bends the hand's path (and a bent path is longer).
        room = ACTION_SCALE - np.sign(move) * hold
        need = np.abs(move)
        scale = float(np.min(np.where(need > room, np.maximum(room, 0.0) / np.maximum(need, 1e-12), 1.0)))
        out = np.empty(9, dtype=np.float32)
        out[:7] = np.clip((scale * move + hold) / ACTION_SCALE, -1.0, 1.0)
        out[7:] = fingers
        return out
