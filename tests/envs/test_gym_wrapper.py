"""LIV reward wrappers on real Gymnasium environments (CartPole renders with pygame, headless)."""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
gym = pytest.importorskip("gymnasium")
pytest.importorskip("pygame")

import liv  # noqa: E402
from liv.envs import LIVReward, LIVRewardVector  # noqa: E402

GOAL = "balance the pole upright"
ACTIONS = [1, 1, 1, 1, 0, 0, 0, 0]


@pytest.fixture(scope="module")
def model():
    return liv.create("clip-tiny", seed=0)


@pytest.fixture(scope="module")
def direction(model):
    """A (D,) embedding goal pointing from "cart pushed left" to "cart pushed right".

    A random tiny model embeds every CartPole frame almost alike (a text goal's S moves by ~1e-7 per
    step, float32 noise level); along this direction S moves by ~1e-5 per step, so a wrong reward shows.
    """
    ends = []
    for action in (0, 1):
        env = gym.make("CartPole-v1", render_mode="rgb_array")
        env.reset(seed=0)
        for _ in range(6):
            env.step(action)
        ends.append(model.encode_images(env.render())[0])
    return ends[1] - ends[0]


def rollout(env, actions, seed=0):
    """Reset and step ``env``; returns observations, rewards, infos and the frame after every call."""
    obs, info = env.reset(seed=seed)
    out = {"obs": [obs], "rewards": [], "infos": [info], "frames": [env.render()]}
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out["obs"].append(obs)
        out["rewards"].append(reward)
        out["infos"].append(info)
        out["frames"].append(env.render())
    return out


def test_potential_reward_is_the_difference_of_similarities(model, direction):
    env = LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, direction)
    wrapped = rollout(env, ACTIONS)
    plain = rollout(gym.make("CartPole-v1", render_mode="rgb_array"), ACTIONS)
    s = model.similarity(np.stack(wrapped["frames"]), direction).double().numpy()
    expected = s[1:] - s[:-1]
    assert np.abs(expected).max() > 5e-6  # the cart moves, so the frames and S do change
    np.testing.assert_allclose(wrapped["rewards"], expected, atol=2e-7, rtol=0)
    np.testing.assert_allclose([i["liv_similarity"] for i in wrapped["infos"]], s, atol=2e-7, rtol=0)
    # The environment itself is untouched: same observations, its reward kept in info.
    np.testing.assert_array_equal(np.stack(wrapped["obs"]), np.stack(plain["obs"]))
    assert [i["env_reward"] for i in wrapped["infos"][1:]] == plain["rewards"] == [1.0] * len(ACTIONS)
    assert all(isinstance(r, float) for r in wrapped["rewards"])


def test_value_mode_and_value_scale(model):
    env = LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, GOAL, mode="value",
                    scale="value", gamma=0.9)
    got = rollout(env, ACTIONS[:3])
    s = model.similarity(np.stack(got["frames"]), GOAL).double().numpy()
    np.testing.assert_allclose(got["rewards"], s[1:] * 10.0, atol=2e-6, rtol=0)


def test_image_goal_and_camera_function(model):
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    env.reset(seed=1)
    goal = env.render()
    calls = []

    def camera(e):
        calls.append(1)
        return e.render()[::2, ::2]  # a different "camera": half resolution

    wrapped = LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, goal, camera=camera)
    got = rollout(wrapped, ACTIONS[:2], seed=1)
    assert len(calls) == 3
    # At reset the half-resolution view of the goal state itself is scored against the full-size goal.
    s0 = float(model.similarity(got["frames"][0][::2, ::2], goal)[0])
    assert got["infos"][0]["liv_similarity"] == pytest.approx(s0, abs=2e-7)


class NamedCameraEnv(gym.Env):
    """A minimal env whose render takes a camera name: each camera sees a different flat colour."""

    metadata = {"render_modes": ["rgb_array"]}
    render_mode = "rgb_array"
    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        return 0, {}

    def step(self, action):
        return 0, 0.5, False, False, {}

    def render(self, camera_name="front"):
        colour = {"front": (200, 30, 30), "top": (30, 30, 200)}[camera_name]
        return np.broadcast_to(np.array(colour, np.uint8), (16, 16, 3)).copy()


def test_named_camera(model):
    top = NamedCameraEnv().render("top")
    wrapped = LIVReward(NamedCameraEnv(), model, top, camera="top")
    _, info = wrapped.reset()
    assert info["liv_similarity"] == pytest.approx(1.0, abs=1e-5)  # the goal is exactly what "top" sees
    _, reward, _, _, info = wrapped.step(0)
    assert reward == pytest.approx(0.0, abs=1e-6) and info["env_reward"] == 0.5
    front = LIVReward(NamedCameraEnv(), model, top, camera="front")
    assert front.reset()[1]["liv_similarity"] < 0.9999


def test_needs_rgb_array_rendering(model):
    with pytest.raises(ValueError, match="rgb_array"):
        LIVReward(gym.make("CartPole-v1"), model, GOAL)
    with pytest.raises(ValueError, match="mode"):
        env = gym.make("CartPole-v1", render_mode="rgb_array")
        LIVReward(env, model, GOAL, mode="shaped")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="reset"):
        LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, GOAL).step(0)


def test_vector_env_rewards_and_autoreset(model, direction):
    venv = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync", render_mode="rgb_array")
    env = LIVRewardVector(venv, model, direction)
    _, info = env.reset(seed=[3, 4])
    frames = [np.stack(env.render())]
    rewards, env_rewards, done_before = [], [], []
    resetting = np.zeros(2, dtype=bool)
    for _ in range(14):  # always pushing right ends both episodes after about 10 steps
        done_before.append(resetting.copy())
        _, r, term, trunc, info = env.step(np.array([1, 1]))
        rewards.append(r)
        env_rewards.append(info["env_reward"])
        frames.append(np.stack(env.render()))
        resetting = term | trunc
    assert any(d.any() for d in done_before)  # an autoreset step happened
    for k in range(2):
        s = model.similarity(np.stack([f[k] for f in frames]), direction).double().numpy()
        expected = np.where([d[k] for d in done_before], 0.0, s[1:] - s[:-1])
        assert np.abs(expected).max() > 5e-6
        np.testing.assert_allclose([r[k] for r in rewards], expected, atol=2e-7, rtol=0)
        # CartPole pays 1 per step and 0 on the autoreset step; the wrapper passes that through.
        assert [e[k] for e in env_rewards] == [0.0 if d[k] else 1.0 for d in done_before]


def test_vector_env_refuses_same_step_autoreset(model):
    venv = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync", render_mode="rgb_array",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    with pytest.raises(ValueError, match="SAME_STEP"):
        LIVRewardVector(venv, model, GOAL)


def test_missing_gymnasium_gives_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    monkeypatch.delitem(sys.modules, "liv.envs.gym_wrapper")
    with pytest.raises(ImportError, match=r"pip install 'liv\[sim\]'"):
        importlib.import_module("liv.envs.gym_wrapper")


def test_success_flag_from_a_threshold_or_a_liv_evaluate_file(model, direction, tmp_path):
    from liv.eval.detection import write_thresholds

    plain = rollout(LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, direction), ACTIONS)
    s = np.array([i["liv_similarity"] for i in plain["infos"]])
    t = float(np.median(s))  # some frames on each side
    flagged = rollout(LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, direction,
                                success_threshold=t), ACTIONS)
    assert [i["liv_success"] for i in flagged["infos"]] == [bool(v >= t) for v in s]
    assert 0 < sum(i["liv_success"] for i in flagged["infos"]) < len(s)

    # A text goal reads its threshold from the file `liv evaluate` writes; the flag is on S, not S/(1-gamma).
    s_text = model.similarity(np.stack(plain["frames"]), GOAL).double().numpy()
    t_text = float(np.median(s_text))
    path = write_thresholds(tmp_path / "th.json", {"calibration": "half", "per_task": {
        GOAL: {"threshold": t_text}, "other": {"threshold": None}}}, "m")
    env = LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, GOAL, scale="value",
                    success_threshold=path)
    got = rollout(env, ACTIONS)
    assert [i["liv_success"] for i in got["infos"]] == [bool(v >= t_text) for v in
                                                       [i["liv_similarity"] for i in got["infos"]]]
    with pytest.raises(ValueError, match="no threshold for the goal text 'stack the blocks'"):
        LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, "stack the blocks", success_threshold=path)
    with pytest.raises(ValueError, match="not a similarity in"):
        LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, direction, success_threshold=1.5)
    as_numpy = LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, direction,
                         success_threshold=np.float32(t))  # a numpy number is a number, not a path
    assert as_numpy.scorer.threshold == float(np.float32(t))
    with pytest.raises(ValueError, match="not a text"):
        LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, direction, success_threshold=path)

    venv = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync", render_mode="rgb_array")
    vec = LIVRewardVector(venv, model, direction, success_threshold=t)
    _, info = vec.reset(seed=[3, 4])
    assert info["liv_success"].tolist() == (info["liv_similarity"] >= t).tolist() and info["_liv_success"].all()
    _, _, _, _, info = vec.step(np.array([1, 0]))
    assert info["liv_success"].dtype == bool and info["liv_success"].tolist() == (info["liv_similarity"] >= t).tolist()
