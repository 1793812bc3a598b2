"""Gymnasium wrappers whose reward is LIV's: the goal similarity of the rendered frame, or its change.

After every ``reset`` and ``step`` the environment is rendered to an RGB frame, the frame is embedded
with the image encoder phi and compared with the goal embedding (computed once, at construction):
S_t = cos(phi(o_t), g). The reward of a step is S_t+1 - S_t ("potential", LIV's potential-based reward,
which telescopes to S_T - S_0 over an episode) or S_t+1 ("value"). The environment's own reward is kept
in ``info["env_reward"]`` and S_t+1 in ``info["liv_similarity"]``. With ``success_threshold`` (a number,
or the ``success_thresholds.json`` that ``liv evaluate`` writes, see :mod:`liv.eval.detection`),
``info["liv_success"]`` says whether S_t+1 is at or above it.

Single environments use :class:`LIVReward`; ``gymnasium.vector`` environments, whose ``render()`` returns
one frame per sub-environment, use :class:`LIVRewardVector`, which embeds all frames in one batch.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np

try:
    import gymnasium as gym
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError("liv.envs needs gymnasium, an optional dependency: pip install 'liv[sim]' "
                      "(or: pip install gymnasium)") from e

from liv.reward import embed_goals, scores_from_embeddings

if TYPE_CHECKING:
    from liv.model import LIVModel
    from liv.reward import Goal

Mode = Literal["potential", "value"]
Camera = Union[None, str, Callable[[Any], Any]]
"""None: ``env.render()``; a camera name (MuJoCo-style envs); or a function env -> (H, W, 3) uint8 frame."""
Threshold = Union[None, float, str, "os.PathLike[str]"]
"""None (no success flag), a similarity S in [-1, 1], or a success-thresholds file of `liv evaluate`."""


def resolve_threshold(threshold: Threshold, goal: Any) -> float | None:
    """The success threshold on S for ``goal``: a number as it is; from a `liv evaluate` success-thresholds
    file, the threshold of the goal text. Raises ValueError for a number outside [-1, 1], a file that is not
    a thresholds file or has no threshold for the goal text, or a file with an image goal."""
    if threshold is None:
        return None
    if isinstance(threshold, numbers.Real):  # numpy scalars too
        value = float(threshold)
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise ValueError(f"success_threshold {threshold} is not a similarity in [-1, 1]")
        return value
    from liv.eval.detection import read_thresholds

    known = read_thresholds(threshold)
    if not isinstance(goal, str):
        raise ValueError(f"{threshold}: a success-thresholds file holds thresholds for task texts; this goal is not "
                         "a text (pass the threshold as a number)")
    if goal not in known:
        raise ValueError(f"{threshold} has no threshold for the goal text {goal!r}; it has {sorted(known)}")
    return known[goal]


def render_camera(env: gym.Env, name: str) -> np.ndarray:
    """Render ``env`` from the named camera -> (H, W, 3) uint8, for MuJoCo-style environments.

    Supported: Gymnasium MuJoCo environments (and those built on them, such as Meta-World 3), whose
    ``mujoco_renderer`` draws from its ``camera_id`` (switched to ``name`` for this one frame), and any
    environment whose ``render`` accepts a ``camera_name`` keyword. Anything else: pass a function as
    the wrapper's ``camera``. Raises ValueError when neither applies or the camera does not exist.
    """
    base = env.unwrapped
    renderer = getattr(base, "mujoco_renderer", None)
    if renderer is not None and hasattr(renderer, "camera_id"):
        import mujoco

        camera_id = mujoco.mj_name2id(base.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if camera_id < 0:
            raise ValueError(f"the MuJoCo model has no camera named {name!r}")
        previous = renderer.camera_id
        renderer.camera_id = camera_id
        try:
            return renderer.render("rgb_array")
        finally:
            renderer.camera_id = previous
    if "camera_name" in inspect.signature(base.render).parameters:
        return base.render(camera_name=name)
    raise ValueError(f"cannot select camera {name!r}: {type(base).__name__} has no mujoco_renderer and its "
                     "render() takes no camera_name; pass camera=<function env -> frame> instead")


def _check_frame(frame: Any, where: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{where} must give an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}; "
                         "create the environment with render_mode='rgb_array'")
    return frame


class _Scorer:
    """The goal embedding and the frame -> S computation shared by both wrappers."""

    def __init__(self, model: LIVModel, goal: Goal, mode: str, scale: str, gamma: float, strict_text: bool,
                 success_threshold: Threshold = None):
        self.threshold = resolve_threshold(success_threshold, goal)  # before the model works: a bad file fails fast
        if mode not in ("potential", "value"):
            raise ValueError(f"mode must be 'potential' or 'value', got {mode!r}")
        if scale not in ("similarity", "value"):
            raise ValueError(f"scale must be 'similarity' or 'value', got {scale!r}")
        self.model, self.mode, self.scale, self.gamma = model, mode, scale, gamma
        self.goal_embedding = embed_goals(model, goal, strict_text=strict_text)  # (1, D), once: every step reuses it

    def similarity(self, frames: np.ndarray) -> np.ndarray:
        """(K, H, W, 3) uint8 frames -> (K,) float64 cosine similarities with the goal."""
        emb = self.model.encode_images(frames)
        return scores_from_embeddings(emb, self.goal_embedding)[:, 0].cpu().double().numpy()

    def success_info(self, s: np.ndarray) -> dict[str, Any]:
        """{"liv_success": S >= threshold} ((K,) bool) or {} without a threshold."""
        return {} if self.threshold is None else {"liv_success": s >= self.threshold}

    def reward(self, s_new: np.ndarray, s_old: np.ndarray) -> np.ndarray:
        r = s_new - s_old if self.mode == "potential" else s_new.copy()
        return r / (1.0 - self.gamma) if self.scale == "value" else r


class LIVReward(gym.Wrapper):
    """Replace a Gymnasium environment's reward with LIV's reward for one goal.

    Args:
        env: the environment; without ``camera`` it must have ``render_mode="rgb_array"``.
        model: a :class:`liv.LIVModel`.
        goal: a text, an (H, W, 3) image or a (D,) embedding; embedded once, here.
        mode: ``"potential"``: reward S_t+1 - S_t; ``"value"``: reward S_t+1.
        camera: see :data:`Camera`.
        scale: ``"similarity"`` (S in [-1, 1]) or ``"value"`` (S / (1 - gamma), the LIV value's units).
        gamma: discount of the value scale.
        strict_text: a text goal longer than the model's context raises ValueError here instead of being
            cut with a ``liv.TextTruncatedWarning`` (see ``LIVModel.encode_texts``).
        success_threshold: see :data:`Threshold`; the threshold is on the similarity S whatever ``scale``.
            Raises ValueError for a file that is not a thresholds file or has no threshold for the goal.

    ``step`` returns a Python float reward; ``info["env_reward"]`` holds the environment's reward and
    ``info["liv_similarity"]`` the similarity S of the new frame (also set by ``reset``); with a threshold,
    ``info["liv_success"]`` is a bool.
    """

    def __init__(self, env: gym.Env, model: LIVModel, goal: Goal, mode: Mode = "potential",
                 camera: Camera = None, scale: str = "similarity", gamma: float = 0.98, strict_text: bool = False,
                 success_threshold: Threshold = None):
        super().__init__(env)
        if camera is None and env.render_mode != "rgb_array":
            raise ValueError(f"LIVReward renders the environment: create it with render_mode='rgb_array' "
                             f"(it has {env.render_mode!r}) or pass a camera")
        self.scorer = _Scorer(model, goal, mode, scale, gamma, strict_text, success_threshold)
        self.camera = camera
        self._last: np.ndarray | None = None

    def render_frame(self) -> np.ndarray:
        """The frame LIV scores: (H, W, 3) uint8 RGB from ``env.render()`` or the chosen camera."""
        if self.camera is None:
            return _check_frame(self.env.render(), "env.render()")
        if callable(self.camera):
            return _check_frame(self.camera(self.env), "the camera function")
        return _check_frame(render_camera(self.env, self.camera), f"camera {self.camera!r}")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        """Reset the environment and score its first frame (``info["liv_similarity"]``)."""
        obs, info = self.env.reset(seed=seed, options=options)
        self._last = self.scorer.similarity(self.render_frame()[None])
        return obs, {**info, "liv_similarity": float(self._last[0]), **self._success(self._last)}

    def _success(self, s: np.ndarray) -> dict[str, bool]:
        return {k: bool(v[0]) for k, v in self.scorer.success_info(s).items()}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        """Step the environment; the reward is LIV's, the environment's is in ``info["env_reward"]``."""
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        s = self.scorer.similarity(self.render_frame()[None])
        reward = float(self.scorer.reward(s, self._last)[0])
        self._last = s
        return obs, reward, terminated, truncated, {**info, "env_reward": env_reward, "liv_similarity": float(s[0]),
                                                    **self._success(s)}


class LIVRewardVector(gym.vector.VectorWrapper):
    """LIV's reward for every sub-environment of a ``gymnasium.vector`` environment (one goal for all).

    Arguments as :class:`LIVReward`, except that ``camera`` is None (``env.render()``, which must return
    one (H, W, 3) uint8 frame per sub-environment: create the vector env with ``render_mode="rgb_array"``)
    or a function vector env -> sequence of frames. Rewards are (num_envs,) float64 arrays; ``info``
    gains ``env_reward`` and ``liv_similarity`` arrays (with all-True ``_env_reward``/``_liv_similarity``
    masks, Gymnasium's convention), and with a threshold a (num_envs,) bool ``liv_success`` (and its mask).

    Autoreset: in the default ``NEXT_STEP`` mode the step after a sub-environment ends only resets it;
    that step is no transition, so its LIV reward is 0 (as its environment reward is) and the new first
    frame becomes the reference for the next reward. In ``DISABLED`` mode, ``reset(options={"reset_mask":
    m})`` re-scores only the masked sub-environments. ``SAME_STEP`` mode is refused: it renders the next
    episode's first frame in place of the final one, so the last reward of every episode would be wrong.
    """

    def __init__(self, env: gym.vector.VectorEnv, model: LIVModel, goal: Goal, mode: Mode = "potential",
                 camera: Callable[[Any], Sequence[Any]] | None = None, scale: str = "similarity",
                 gamma: float = 0.98, strict_text: bool = False, success_threshold: Threshold = None):
        super().__init__(env)
        mode_ = env.metadata.get("autoreset_mode", "NextStep")  # Gymnasium's default when unspecified
        self._autoreset = str(getattr(mode_, "value", mode_)).lower().replace("_", "")
        if self._autoreset == "samestep":
            raise ValueError("LIVRewardVector needs autoreset_mode NEXT_STEP or DISABLED: with SAME_STEP the "
                             "final frame of an episode is never rendered")
        if camera is None and env.render_mode != "rgb_array":
            raise ValueError(f"LIVRewardVector renders the environments: create them with render_mode='rgb_array' "
                             f"(got {env.render_mode!r}) or pass a camera function")
        self.scorer = _Scorer(model, goal, mode, scale, gamma, strict_text, success_threshold)
        self.camera = camera
        self._last: np.ndarray | None = None
        self._resetting = np.zeros(env.num_envs, dtype=bool)

    def render_frames(self) -> np.ndarray:
        """One frame per sub-environment -> (num_envs, H, W, 3) uint8."""
        frames = self.env.render() if self.camera is None else self.camera(self.env)
        if frames is None or len(frames) != self.num_envs:
            raise ValueError(f"rendering must give {self.num_envs} frames, got "
                             f"{None if frames is None else len(frames)}")
        return np.stack([_check_frame(f, "render()") for f in frames])

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict]:
        """Reset (all, or ``options["reset_mask"]``) sub-environments and score their frames."""
        obs, info = self.env.reset(seed=seed, options=options)
        s = self.scorer.similarity(self.render_frames())
        mask = None if options is None else options.get("reset_mask")
        if mask is None or self._last is None:
            self._last = s
            self._resetting[:] = False
        else:
            mask = np.asarray(mask, dtype=bool)
            self._last = np.where(mask, s, self._last)
            self._resetting[mask] = False
        return obs, {**info, "liv_similarity": s, "_liv_similarity": np.ones(self.num_envs, dtype=bool),
                     **self._success(s)}

    def _success(self, s: np.ndarray) -> dict[str, np.ndarray]:
        found = self.scorer.success_info(s)
        return {**found, **({"_liv_success": np.ones(self.num_envs, dtype=bool)} if found else {})}

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step all sub-environments -> LIV rewards (num_envs,); see the class docstring on autoreset."""
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        obs, env_reward, terminated, truncated, info = self.env.step(actions)
        s = self.scorer.similarity(self.render_frames())
        reward = self.scorer.reward(s, self._last)
        reward[self._resetting] = 0.0
        self._last = s
        self._resetting = (np.logical_or(terminated, truncated) if self._autoreset == "nextstep"
                           else np.zeros(self.num_envs, dtype=bool))
        everywhere = np.ones(self.num_envs, dtype=bool)
        info = {**info, "env_reward": np.asarray(env_reward), "_env_reward": everywhere,
                "liv_similarity": s, "_liv_similarity": everywhere, **self._success(s)}
        return obs, reward, terminated, truncated, info
