"""`liv reward`, `liv evaluate`, `liv compare` end to end on files written to disk."""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av")
pytest.importorskip("matplotlib")

import liv  # noqa: E402
from liv.cli_args import add_dataclass_arguments, dataclass_from_args  # noqa: E402
from liv.eval.commands import (CompareArgs, EvaluateArgs, RewardArgs, run_compare, run_evaluate,  # noqa: E402
                               run_reward, slug)
from liv.eval.labels import model_labels  # noqa: E402

FPS = 8


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved clip-tiny model, a 10-frame video, a goal image and a frame-folder dataset."""
    from liv.data.frame_folders import write_frame_folders
    from liv.data.video_write import write_video

    root = tmp_path_factory.mktemp("cmd")
    model = liv.create("clip-tiny", seed=0)
    model.save(root / "model")
    rng = np.random.default_rng(0)
    # Smooth frames (a moving bright square) survive lossy H.264 well; the test decodes them back anyway.
    video = np.full((10, 48, 64, 3), 40, np.uint8)
    for t in range(10):
        video[t, 10:30, 4 + 5 * t: 20 + 5 * t] = (230, 200, 60)
    write_video(root / "clip.mp4", video, fps=FPS)
    Image.fromarray(video[-1]).save(root / "goal.png")
    episodes = [("open the drawer", rng.integers(0, 256, (5, 24, 32, 3), dtype=np.uint8)),
                ("close the drawer", rng.integers(0, 256, (4, 24, 32, 3), dtype=np.uint8)),
                ("open the drawer", rng.integers(0, 256, (3, 24, 32, 3), dtype=np.uint8))]
    write_frame_folders(root / "frames", episodes)
    return {"root": root, "model": model, "model_dir": root / "model", "video": root / "clip.mp4",
            "goal_png": root / "goal.png", "frames": root / "frames", "episodes": episodes}


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(x) if x else np.nan for x in r] for r in rows[1:]])


def test_reward_on_a_video(files, tmp_path, capsys):
    out = tmp_path / "out"
    args = RewardArgs(model=files["model_dir"], input=files["video"], goal=["Open the drawer!"],
                      goal_image=[files["goal_png"]], out=out, animate=True)
    assert run_reward(args) == 0
    header, table = read_csv(out / "rewards.csv")
    assert header == ["frame", "time_s", "sim_open_the_drawer", "reward_open_the_drawer", "sim_goal", "reward_goal"]
    frames = decode(files["video"])
    model = files["model"]
    np.testing.assert_array_equal(table[:, 0], np.arange(10))
    np.testing.assert_allclose(table[:, 1], np.arange(10) / FPS, atol=1e-6)  # the video's own frame rate
    for col, goal in ((2, "Open the drawer!"), (4, np.array(Image.open(files["goal_png"]).convert("RGB")))):
        s = model.similarity(frames, goal).double().numpy()
        np.testing.assert_allclose(table[:, col], s, atol=1e-5, rtol=0)
        np.testing.assert_allclose(table[:-1, col + 1], s[1:] - s[:-1], atol=1e-5, rtol=0)
        assert np.isnan(table[-1, col + 1])  # no step leaves the last frame
    assert table[-1, 4] == pytest.approx(1.0, abs=1e-5)  # the goal image is the last frame
    with Image.open(out / "rewards.png") as im:
        assert im.size[0] == 1200 and im.size[1] > 500  # a frame strip above one row per goal
    assert len(decode(out / "rewards.mp4")) == 10
    out = capsys.readouterr().out
    assert "10 frames at 8 fps" in out and f"  episode 0: {files['video']}\n" in out


def test_reward_on_a_dataset_episode_with_its_own_text_and_gif(files, tmp_path):
    out = tmp_path / "out"
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, RewardArgs)  # through the generated command line
    ns = parser.parse_args(["--model", str(files["model_dir"]), str(files["frames"]), "--episode", "1",
                            "--out", str(out), "--animate", "--animation-format", "gif", "--scale", "value"])
    assert run_reward(dataclass_from_args(RewardArgs, ns)) == 0
    header, table = read_csv(out / "rewards.csv")
    assert header == ["frame", "time_s", "value_close_the_drawer", "reward_close_the_drawer"]
    text, frames = files["episodes"][1]
    v = files["model"].similarity(frames, text).double().numpy() / (1 - 0.98)
    np.testing.assert_allclose(table[:, 2], v, atol=5e-4, rtol=0)  # value units: 50x the similarity
    np.testing.assert_allclose(table[:, 1], np.arange(4) / 30, atol=1e-6)  # frame folders: 30 fps default
    with Image.open(out / "rewards.gif") as im:
        assert im.n_frames == 4


def test_reward_over_a_dataset_to_parquet(files, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "values.parquet"
    args = RewardArgs(model=files["model_dir"], data=files["frames"], goal=["close the drawer", "wave"], out=out)
    assert run_reward(args) == 0
    t = pq.read_table(out).to_pydict()
    assert list(t) == ["episode", "task", "frame", "goal", "value", "reward", "source", "manifest", "manifest_line",
                       "episode_index"]
    # Goals per episode: own text + extras not equal to it -> 2 + 3 + 2 goals over 5, 4, 3 frames.
    assert len(t["episode"]) == 5 * 3 + 4 * 2 + 3 * 3
    model = files["model"]
    for index, (text, frames) in enumerate(files["episodes"]):
        for goal in dict.fromkeys([text, "close the drawer", "wave"]):
            rows = [i for i in range(len(t["episode"])) if t["episode"][i] == index and t["goal"][i] == goal]
            assert [t["frame"][i] for i in rows] == list(range(len(frames)))
            assert {t["task"][i] for i in rows} == {text}
            assert {(t["source"][i], t["manifest_line"][i]) for i in rows} == {
                (str(files["frames"] / f"episode_{index:06d}"), index + 2)}  # the header is line 1
            s = model.similarity(frames, goal).double().numpy()
            np.testing.assert_allclose([t["value"][i] for i in rows], s, atol=1e-5, rtol=0)
            np.testing.assert_allclose([t["reward"][i] for i in rows[:-1]], s[1:] - s[:-1], atol=1e-5, rtol=0)
            assert t["reward"][rows[-1]] is None


def test_evaluate_and_compare(files, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run_evaluate(EvaluateArgs(model=files["model_dir"], data=files["frames"], out=out,
                                     extra_goal=["do nothing"], episodes_per_task=1)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == ["open the drawer", "close the drawer"]
    assert metrics["goal_texts"][-1] == "do nothing" and metrics["dataset"]["num_evaluated"] == 3
    assert metrics["model"]["path"] == str(files["model_dir"])
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert "text-goal VOC" in capsys.readouterr().out

    other = tmp_path / "other" / "model"
    liv.create("clip-tiny", seed=1).save(other)
    cmp_out = tmp_path / "cmp"
    assert run_compare(CompareArgs(models=[files["model_dir"], other], data=files["frames"], out=cmp_out,
                                   max_episodes_per_task=1)) == 0
    data = json.loads((cmp_out / "compare.json").read_text())
    labels = list(data)
    assert labels == model_labels([files["model_dir"], other]) and len(set(labels)) == 2
    assert all(d["dataset"]["num_evaluated"] == 2 for d in data.values())
    # The two models are different random networks: their text-goal VOC differs.
    assert data[labels[0]]["overall"]["text_goal"] != data[labels[1]]["overall"]["text_goal"]
    page = (cmp_out / "compare.html").read_text()
    assert labels == [files["root"].name, "other"]  # the run folders, not the generic "model"
    refs = re.findall(r'(?:href|src)="([^"]+)"', page)
    local = [r for r in refs if not r.startswith("data:")]
    assert len(local) >= 2 and all((cmp_out / r).is_file() for r in local)
    assert page.count('src="data:image/png') == 2 + 2  # a confusion matrix per model, curves of 2 episodes


def test_max_episodes_per_task_keeps_failures_and_says_what_it_dropped(files, tmp_path, capsys):
    from liv.cli import main
    from liv.data.lerobot import write_lerobot

    rng = np.random.default_rng(3)
    # One task: three successes, then two failures (a LeRobot dataset: success flags per step).
    outcomes = [True, True, True, False, False]
    data = write_lerobot(tmp_path / "ds", [{"frames": rng.integers(0, 256, (3, 32, 48, 3), dtype=np.uint8),
                                            "task": "open the drawer", "success": np.array([False, False, ok])}
                                           for ok in outcomes], fps=10)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(files["model_dir"]), "--data", str(data), "--out", str(out),
                 "--max-episodes-per-task", "2"]) == 0
    err = capsys.readouterr().err
    note = ("note: max_episodes_per_task 2 (per task and outcome): kept success 2, failure 2; dropped success 1 of "
            "5 episodes\n")
    assert note in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["index"] for e in metrics["episodes"]] == [0, 1, 3, 4]
    assert metrics["dataset"]["selection"]["dropped"] == {"success": 1, "failure": 0, "unknown": 0}
    assert metrics["per_task"][0]["num_failure"] == 2 and metrics["overall"]["auroc"] is not None
    assert "Selection: max_episodes_per_task 2" in (out / "report.html").read_text()


def test_helpers_and_errors(files, tmp_path):
    assert slug("Open the drawer!") == "open_the_drawer" and slug("???") == "goal"
    assert model_labels([Path("a/final"), Path("b/final")]) == ["a", "b"]
    with pytest.raises(ValueError, match="exactly one"):
        run_reward(RewardArgs(model=files["model_dir"], out=tmp_path))
    with pytest.raises(ValueError, match="--goal"):
        run_reward(RewardArgs(model=files["model_dir"], input=files["video"], out=tmp_path))
    with pytest.raises(ValueError, match="out of range"):
        run_reward(RewardArgs(model=files["model_dir"], input=files["frames"], episode=3, out=tmp_path))
    with pytest.raises(ValueError, match="parquet"):
        run_reward(RewardArgs(model=files["model_dir"], data=files["frames"], out=tmp_path / "x.csv"))
