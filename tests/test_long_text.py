"""One policy for texts longer than the 77-token context, on every path that embeds text.

Default: cut to fit and warn (liv.TextTruncatedWarning) once per distinct text; strict: ValueError.
Each test writes texts of its own (a tag in the part that is cut off), since the tokenizer remembers
for the whole process which texts it has already warned about.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import liv
from liv.cli import main
from liv.models.tokenizer import count_tokens
from liv.reward import rewards, values

SHORT = "open the drawer"


@pytest.fixture(scope="module")
def model():
    return liv.create("clip-tiny", seed=0)


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).integers(0, 256, (4, 32, 40, 3), dtype=np.uint8)


@pytest.fixture
def long_goals(request):
    """Two goals that differ only after CLIP's 77-token context (as /tmp/cases/long_goals.txt)."""
    head = "pick up the " + "small " * 72
    tag = request.node.name.replace("[", " ").replace("]", "").replace("_", " ")
    return [f"{head}cup {tag} and put it in the red bowl", f"{head}cup {tag} and put it in the blue bowl"]


def with_ends(text: str) -> str:
    """"N tokens with start/end", as the messages give a text's length."""
    return f"{count_tokens(text) + 2} tokens with start/end"


def truncation_messages(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, liv.TextTruncatedWarning)]


def assert_warned_once_each(record, goals):
    messages = truncation_messages(record)
    assert len(messages) == len(goals), messages
    for message, goal, bowl in zip(messages, goals, ("red bowl", "blue bowl")):
        assert bowl in message  # each text is named by its end, where the two differ
        assert f"is too long: {with_ends(goal)}" in message and "over context_length=77" in message


def test_tokenize_warns_once_per_text_over_repeated_calls(long_goals):
    with pytest.warns(liv.TextTruncatedWarning) as record:
        a = liv.tokenize(long_goals)
        b = liv.tokenize(long_goals + long_goals[::-1])
        c = liv.tokenize(long_goals[1], context_length=90)  # another context: another cut, another warning
    assert torch.equal(a[0], a[1]) and torch.equal(b[:2], a)  # identical rows: hence the warning
    assert_warned_once_each(record[:2], long_goals)
    assert len(record) == 3 and "over context_length=90" in str(record[2].message) and c.shape == (1, 90)


def test_warning_gives_token_count_and_context(long_goals):
    n = count_tokens(long_goals[0]) + 2
    with pytest.warns(liv.TextTruncatedWarning, match=rf"is too long: {n} tokens with start/end, {n - 77} over "
                                                      r"context_length=77; it is cut to its first 77") as record:
        liv.tokenize(long_goals[0])
    assert record[0].filename == __file__  # points at the caller's line, not at liv's internals


def test_encode_texts_warns_once_per_text_and_strict_raises(model, long_goals):
    with pytest.warns(liv.TextTruncatedWarning) as record:
        first = model.encode_texts(long_goals)
        for _ in range(3):
            again = model.encode_texts(long_goals)
    assert_warned_once_each(record, long_goals)
    torch.testing.assert_close(first[0], first[1])  # the two goals are indistinguishable to the model
    torch.testing.assert_close(first, again)
    # Strict mode refuses even a text already warned about, naming its start and its token count.
    with pytest.raises(ValueError, match=r"text 1 \('pick up the small .* blue bowl'\) is too long: "
                                         + with_ends(long_goals[1])):
        model.encode_texts([SHORT, long_goals[1]], strict_text=True)
    with pytest.raises(ValueError, match=with_ends(long_goals[0])):
        model.tokenize(long_goals[0], strict_text=True)


@pytest.mark.parametrize("path", ["values", "rewards", "similarity", "model.values", "model.rewards"])
def test_value_and_reward_paths_warn_and_refuse(model, frames, long_goals, path):
    call = {"values": lambda g, **k: values(model, frames, g, **k),
            "rewards": lambda g, **k: rewards(model, frames, g, **k),
            "similarity": lambda g, **k: torch.stack([model.similarity(frames, x, **k) for x in g], 1),
            "model.values": lambda g, **k: model.values(frames, g, **k),
            "model.rewards": lambda g, **k: model.rewards(frames, g, **k)}[path]
    with pytest.warns(liv.TextTruncatedWarning) as record:
        out = call(long_goals)
        call(long_goals)
    assert_warned_once_each(record, long_goals)
    torch.testing.assert_close(out[:, 0], out[:, 1])
    with pytest.raises(ValueError, match=with_ends(long_goals[0])):
        call([SHORT, long_goals[0]], strict_text=True)


def test_short_texts_never_warn(model, frames):
    with warnings.catch_warnings():
        warnings.simplefilter("error", liv.TextTruncatedWarning)
        model.encode_texts([SHORT, "close the drawer"], strict_text=True)
        values(model, frames, [SHORT, frames[0]])
        rewards(model, frames, SHORT, strict_text=True)
        liv.tokenize(["x " * 75])  # exactly fills the context: 75 tokens + start + end


def test_an_error_filter_refuses_every_time(model, long_goals):
    with warnings.catch_warnings():
        warnings.simplefilter("error", liv.TextTruncatedWarning)
        for _ in range(2):  # not remembered as warned: the filter raised instead of showing it
            with pytest.raises(liv.TextTruncatedWarning, match="red bowl"):
                model.encode_texts(long_goals[:1])


def test_gym_wrapper_warns_at_construction_and_strict_raises(model, long_goals):
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("pygame")
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from liv.envs import LIVReward

    with pytest.warns(liv.TextTruncatedWarning) as record:
        envs = [LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, goal) for goal in long_goals]
        LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, long_goals[0])
    assert_warned_once_each(record, long_goals)
    torch.testing.assert_close(envs[0].scorer.goal_embedding, envs[1].scorer.goal_embedding)
    with pytest.raises(ValueError, match=with_ends(long_goals[0])):
        LIVReward(gym.make("CartPole-v1", render_mode="rgb_array"), model, long_goals[0], strict_text=True)


# ------------------------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    pytest.importorskip("av")
    from liv.data.video_write import write_video

    root = tmp_path_factory.mktemp("long_text")
    model.save(root / "model")
    video = np.full((5, 32, 40, 3), 50, np.uint8)
    for t in range(5):
        video[t, 8:20, 4 + 5 * t:14 + 5 * t] = 220
    write_video(root / "clip.mp4", video, fps=8)
    return root


def one_line_warnings(stderr: str, goals) -> None:
    lines = [line for line in stderr.splitlines() if "too long" in line]
    assert len(lines) == len(goals), stderr
    for line, bowl in zip(lines, ("red bowl", "blue bowl")):
        assert line.startswith("liv ") and ": warning: text ('pick up the small" in line and bowl in line
    assert "TextTruncatedWarning" not in stderr and ".py:" not in stderr and "Traceback" not in stderr


def test_reward_command_warns_in_one_line_per_goal_and_strict_exits_2(files, long_goals, tmp_path, capsys):
    argv = ["reward", "--model", str(files / "model"), str(files / "clip.mp4"), "--out", str(tmp_path / "out")]
    goals = [x for g in long_goals for x in ("--goal", g)]
    assert main(argv + goals) == 0
    one_line_warnings(capsys.readouterr().err, long_goals)
    assert main(argv + ["--goal", long_goals[0], "--strict-text"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("liv reward: error: text 0 ('pick up the small") and with_ends(long_goals[0]) in err
    assert err.count("\n") == 1


def test_reward_over_a_dataset_and_evaluate_warn_about_episode_texts(files, long_goals, tmp_path, capsys):
    from liv.data.frame_folders import write_frame_folders

    rng = np.random.default_rng(1)
    data = tmp_path / "data"
    write_frame_folders(data, [(g, rng.integers(0, 256, (3, 24, 32, 3), dtype=np.uint8)) for g in long_goals])
    model = str(files / "model")
    assert main(["reward", "--model", model, "--data", str(data), "--out", str(tmp_path / "v.parquet")]) == 0
    one_line_warnings(capsys.readouterr().err, long_goals)
    assert main(["evaluate", "--model", model, "--data", str(data), "--out", str(tmp_path / "ev"),
                 "--strict-text"]) == 2
    assert "liv evaluate: error: text 0 (" in capsys.readouterr().err


def test_embed_command_in_a_real_process(files, long_goals, tmp_path):
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    base = [sys.executable, "-m", "liv", "embed", "--model", str(files / "model"), "--out", str(tmp_path / "e.npz")]
    proc = subprocess.run(base + ["--text", *long_goals, SHORT, long_goals[0]], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    one_line_warnings(proc.stderr, long_goals)  # the repeated text is not warned about twice
    embeddings = np.load(tmp_path / "e.npz")["text_embeddings"]
    np.testing.assert_allclose(embeddings[0], embeddings[1], atol=1e-6)
    proc = subprocess.run(base + ["--text", SHORT, "--strict-text"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    proc = subprocess.run(base + ["--text", long_goals[1], "--strict-text"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.startswith("liv embed: error: text 0 (")
    assert with_ends(long_goals[1]) in proc.stderr
