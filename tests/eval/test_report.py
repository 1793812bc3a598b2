"""HTML report, comparison page, curve plots and animations."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import torch
import pytest
from PIL import Image

pytest.importorskip("matplotlib")

import liv  # noqa: E402
from liv.data.episodes import ArrayFrames, Episode, EpisodeDataset  # noqa: E402
from liv.eval.metrics import evaluate_dataset, without_curves  # noqa: E402
from liv.eval.report import plot_reward_curves, write_compare, write_report, write_reward_animation  # noqa: E402

TASKS = ["open the <b>drawer</b>", "close the drawer"]  # markup in a task text must come out escaped


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(0)
    episodes = []
    for k, text in enumerate(TASKS):
        for j, (n, ok) in enumerate([(6, True), (5, False)]):
            flags = np.array([False] * (n - 1) + [ok])
            episodes.append(Episode(ArrayFrames(rng.integers(0, 256, (n, 32, 40, 3), dtype=np.uint8)), text,
                                    source=f"{k}/{j}", success=flags))
    return EpisodeDataset(episodes, root="memory://test", format="memory")


@pytest.fixture(scope="module")
def results(dataset):
    return evaluate_dataset(liv.create("clip-tiny", seed=0), dataset, extra_goals=["do nothing"])


def embedded_images(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b)))
            for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_report_is_self_contained_and_complete(tmp_path, results, dataset):
    path = write_report(results, tmp_path, dataset=dataset, episodes_per_task=2)
    page = path.read_text(encoding="utf-8")
    # Offline: no external resources of any kind, every image inline.
    assert not re.search(r"(src|href)=\"(?!data:)", page) and "<script" not in page and "<link" not in page
    images = embedded_images(page)
    # 2 confusion matrices + 2 episode panels per task (one successful, one failed).
    assert len(images) == 2 + 2 * len(TASKS)
    assert all(im.format == "PNG" and im.size[0] > 300 for im in images)
    assert "open the &lt;b&gt;drawer&lt;/b&gt;" in page and "<b>drawer</b>" not in page
    assert page.count("<tr") == 2 + len(TASKS) + 1  # two header rows, one per task, "all tasks"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(without_curves(results)))
    assert "curves" not in metrics["episodes"][0]


def test_report_without_dataset_or_success_flags(tmp_path, dataset):
    for e in dataset:
        e.success = None
    try:
        r = evaluate_dataset(liv.create("clip-tiny", seed=0), dataset, max_episodes_per_task=1)
    finally:
        for k, e in enumerate(dataset):
            e.success = np.array([False] * (len(e) - 1) + [k % 2 == 0])
    page = write_report(r, tmp_path).read_text(encoding="utf-8")
    assert len(embedded_images(page)) == 2 + len(TASKS)
    assert "no success flags" in page


def test_compare_page(tmp_path, results):
    other = json.loads(json.dumps(results))
    other["overall"]["text_goal"]["voc"] = 0.75
    path = write_compare({"model_a": results, "model_b": other}, tmp_path)
    page = path.read_text(encoding="utf-8")
    assert "<th>model_a</th><th>model_b</th>" in page
    assert "<td><b>0.750</b></td>" in page  # the better VOC is bold
    data = json.loads((tmp_path / "compare.json").read_text())
    assert list(data) == ["model_a", "model_b"] and data["model_b"]["overall"]["text_goal"]["voc"] == 0.75


def test_plot_reward_curves_size_and_shape_check(tmp_path):
    t = np.arange(7) / 10
    path = plot_reward_curves(t, {"open the drawer": np.linspace(0, 1, 7), "goal.png": np.ones(7)},
                              tmp_path / "sub" / "r.png", title="t")
    with Image.open(path) as im:
        assert im.size == (1000, 500)
    with pytest.raises(ValueError, match="shape"):
        plot_reward_curves(t, {"x": np.ones(6)}, tmp_path / "bad.png", title="t")


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


def test_pair_figure_curves_and_episode_choice(tmp_path, dataset):
    from liv.eval.pair_figure import first_episode_of, pair_curves, plot_pair_figure

    # episodes 0/2 succeed, 1/3 fail: the figure takes the first successful one of each text
    assert first_episode_of(dataset, TASKS[1]) == 2
    assert first_episode_of(dataset, TASKS[0], successful=False) == 0
    assert first_episode_of(dataset, "no such task") is None
    model = liv.create("clip-tiny", seed=0)
    frames = dataset[2].all_frames()
    curves = pair_curves(model, frames, TASKS[::-1])
    image = model.encode_images(frames)
    texts = model.encode_texts(TASKS[::-1])
    naive = torch.nn.functional.cosine_similarity(image[:, None], texts[None], dim=-1).double().numpy()
    assert curves.shape == (6, 2) and np.allclose(curves, naive, atol=1e-5)

    path = plot_pair_figure({"a": model, "b": liv.create("clip-tiny", seed=1)}, dataset, (TASKS[0], TASKS[1]),
                            tmp_path / "pair.png")
    assert Image.open(path).size == (960, 520)  # (1 + 2 models) columns x 2 rows at 320 x 260 px
    with pytest.raises(ValueError, match="no successful episode of 'x'"):
        plot_pair_figure({"a": model}, dataset, (TASKS[0], "x"), tmp_path / "bad.png")
