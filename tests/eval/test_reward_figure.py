"""`liv reward`'s figure and animation: one axis per goal, the reward panel, titles, nothing covering data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("matplotlib")

from liv.data.episodes import ArrayFrames, Episode  # noqa: E402
from liv.eval.reward_figure import (animation_figure, episode_title, frame_strip, plot_reward_figure,  # noqa: E402
                                    reward_figure, write_reward_animation)

T = np.arange(12) / 4.0
# The ranges of real LIV curves: a text goal moves by hundredths around 0.2, an image goal sits near 0.9.
CURVES = {"text goal \u201copen the drawer\u201d": 0.2 + 0.02 * np.sin(T),
          "image goal goal.png": 0.9 + 0.08 * T / T[-1]}


def by_gid(ax, gid):
    return next(line for line in ax.get_lines() if line.get_gid() == gid)


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_each_goal_has_its_own_axes_fitted_to_its_data_and_a_reward_panel():
    strip = np.zeros((10, 60, 3), np.uint8)
    fig = reward_figure(T, CURVES, "clip.mp4", text="open the drawer", strip=strip)
    gids = [ax.get_gid() for ax in fig.axes]
    assert gids == ["strip", "similarity", "reward", "similarity", "reward"]
    sims = [ax for ax in fig.axes if ax.get_gid() == "similarity"]
    rewards = [ax for ax in fig.axes if ax.get_gid() == "reward"]
    for s_ax, r_ax, (label, v) in zip(sims, rewards, CURVES.items()):
        line = by_gid(s_ax, f"similarity:{label}")
        np.testing.assert_array_equal(line.get_xdata(), T)
        np.testing.assert_array_equal(line.get_ydata(), v)
        lo, hi = s_ax.get_ylim()
        # Its own range: holds the curve, and is not stretched to another goal's values.
        assert lo <= v.min() and hi >= v.max() and hi - lo < 1.5 * (v.max() - v.min())
        reward = by_gid(r_ax, f"reward:{label}")
        np.testing.assert_allclose(reward.get_ydata(), v[1:] - v[:-1], rtol=0, atol=0)
        np.testing.assert_array_equal(reward.get_xdata(), T[:-1])  # the step leaving frame t sits at t
        assert label in s_ax.get_title(loc="left")
        assert s_ax.get_shared_x_axes().joined(s_ax, sims[0]) and r_ax.get_shared_x_axes().joined(r_ax, sims[0])
    assert sims[0].get_ylim()[1] < sims[1].get_ylim()[0]  # the two goals' ranges do not even meet
    suptitle = fig.get_suptitle()
    assert "clip.mp4" in suptitle and "open the drawer" in suptitle


@pytest.mark.parametrize("long", [False, True])
def test_titles_and_labels_cover_no_data_area(long):
    curves = CURVES
    if long:  # a long instruction and file name must not run into the axes' other titles
        text = "pick up the red block and place it carefully inside the top drawer, then close the drawer"
        curves = {f"text goal \u201c{text}\u201d": CURVES[next(iter(CURVES))], "image goal " + "x" * 90 + ".png": T}
    fig = reward_figure(T, curves, "frames episode 4 (manifest.csv row 5)", text="open the drawer " * 12,
                        strip=np.zeros((10, 60, 3), np.uint8))
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    plots = [ax for ax in fig.axes if ax.get_gid() != "strip"]
    areas = [ax.get_window_extent(renderer) for ax in fig.axes]
    assert all(ax.get_legend() is None for ax in fig.axes)  # goals are named by their axes' titles instead
    texts = [fig._suptitle] + [ax.title for ax in plots] + [ax._left_title for ax in plots] \
        + [ax._right_title for ax in plots]
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in texts if text.get_text()]
    for k, (name, box) in enumerate(boxes):
        assert not any(overlaps(box, area) for area in areas), name
        assert not any(overlaps(box, other) for _, other in boxes[k + 1:]), name  # titles clear of each other
    for a in range(len(areas)):  # no two panels overlap either
        assert not any(overlaps(areas[a], areas[b]) for b in range(a + 1, len(areas)))


def test_plot_reward_figure_writes_a_png_and_checks_shapes(tmp_path):
    path = plot_reward_figure(T, CURVES, tmp_path / "sub" / "r.png", title="clip.mp4")
    with Image.open(path) as im:
        assert im.size[0] == 1200 and im.size[1] > 400
    with pytest.raises(ValueError, match="shape"):
        plot_reward_figure(T, {"x": np.ones(6)}, tmp_path / "bad.png", title="t")
    with pytest.raises(ValueError, match="no curve"):
        reward_figure(T, {}, "t")


def test_episode_titles_name_the_file_or_the_dataset_episode():
    frames = ArrayFrames(np.zeros((3, 8, 8, 3), np.uint8))
    root = "/data/drawer_demos"
    row = Episode(frames, "open the drawer", source=f"{root}/manifest.csv row 5")
    assert episode_title(row, root, 4, single=False) == "drawer_demos episode 4 (manifest.csv row 5)"
    lerobot = Episode(frames, "open the drawer", source=f"{root}/meta/episodes.jsonl line 13",
                      meta={"episode_index": 12, "camera": "observation.images.top"})
    title = episode_title(lerobot, root, 3, single=False)
    assert title == "drawer_demos (LeRobot) episode 12, camera observation.images.top"
    assert "chunk-000" not in title and "episode_000000" not in title
    assert episode_title(row, "/videos/take3.mp4", 0, single=True) == "take3.mp4"


def test_frame_strip_picks_evenly_spaced_frames():
    frames = np.stack([np.full((4, 6, 3), 10 * i, np.uint8) for i in range(11)])
    strip = frame_strip(lambda idx: frames[idx], 11, count=3)
    gap = max(2, 6 // 40)
    assert strip.shape == (4, 3 * 6 + 2 * gap, 3)
    assert [strip[0, k * (6 + gap), 0] for k in range(3)] == [0, 50, 100]  # frames 0, 5, 10


def test_animation_gives_each_goal_its_own_axis_and_titles_clear_of_the_data():
    fig = animation_figure(T, CURVES, title="clip.mp4")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame_ax, *axes = fig.axes
    assert frame_ax.get_gid() == "frame" and len(axes) == 2
    for ax, (label, v) in zip(axes, CURVES.items()):
        lo, hi = ax.get_ylim()
        assert lo <= v.min() and hi >= v.max() and hi - lo < 1.5 * (v.max() - v.min())
        assert ax.get_legend() is None and label in ax.get_title(loc="left")
        title = ax._left_title.get_window_extent(renderer)
        assert not any(overlaps(title, other.get_window_extent(renderer)) for other in fig.axes)


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_animation_has_one_frame_per_input_frame(tmp_path, suffix):
    frames = np.random.default_rng(1).integers(0, 256, (7, 30, 40, 3), dtype=np.uint8)
    curves = {"a": np.linspace(0, 1, 7), "b": np.linspace(1, 0, 7)}
    path = write_reward_animation(lambda idx: frames[idx], 7, np.arange(7) / 5, curves, tmp_path / f"a{suffix}",
                                  fps=5)
    if suffix == ".gif":
        with Image.open(path) as im:
            assert (im.n_frames, im.size) == (7, (1000, 400))
    else:
        av = pytest.importorskip("av")
        with av.open(str(path)) as c:
            decoded = list(c.decode(video=0))
        assert len(decoded) == 7 and (decoded[0].width, decoded[0].height) == (1000, 400)


def test_animation_grows_with_the_number_of_goals(tmp_path):
    frames = np.zeros((3, 20, 20, 3), np.uint8)
    curves = {k: np.arange(3.0) * (i + 1) for i, k in enumerate("abc")}
    path = write_reward_animation(lambda idx: frames[idx], 3, np.arange(3.0), curves, tmp_path / "a.gif", fps=5)
    with Image.open(path) as im:
        assert im.size == (1000, 540)
