"""`liv evaluate`'s HTML report and the opposite-pair figure."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import torch
import pytest
from PIL import Image

pytest.importorskip("matplotlib")

import liv  # noqa: E402
from liv.data.episodes import ArrayFrames, Episode, EpisodeDataset  # noqa: E402
from liv.eval.metrics import evaluate_dataset, without_curves  # noqa: E402
from liv.eval.compare_report import compare_curves_figure, shared_episodes, write_compare  # noqa: E402
from liv.eval.report import write_report  # noqa: E402

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


class _Links(HTMLParser):
    """Every href and src of a page, and its <img> alt texts."""

    def __init__(self):
        super().__init__()
        self.refs, self.alts = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.refs += [a[k] for k in ("href", "src") if a.get(k)]
        if tag == "img":
            self.alts.append(a.get("alt", ""))


def parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


def test_compare_page_links_only_files_it_wrote_and_shows_figures(tmp_path, results, dataset):
    other = json.loads(json.dumps(results))
    other["overall"]["text_goal"]["voc"] = 0.75
    names = ["ft/step_00000600", "base"]
    path = write_compare({names[0]: other, names[1]: results}, tmp_path, dataset=dataset)
    page = path.read_text(encoding="utf-8")
    links = parse(page)
    local = [r for r in links.refs if not r.startswith("data:")]
    assert local and all((tmp_path / r).is_file() for r in local)  # no link to a page that was not written
    assert {f"models/{f}/report.html" for f in ("ft_step_00000600", "base")} <= set(local)
    assert "<td><b>0.750</b></td>" in page  # the better VOC is bold
    for name in names:
        assert f">{name}</a></th>" in page
        assert f"confusion matrix of {name}" in links.alts
    shown = shared_episodes({"a": results}, per_task=1)
    assert shown == [0, 2]  # the first evaluated (successful) episode of each task
    assert [a for a in links.alts if a.startswith("reward curves")] == [
        f"reward curves of episode {i}, per model" for i in shown]
    assert len(embedded_images(page)) == len(names) + len(shown)
    sub = (tmp_path / "models" / "base" / "report.html").read_text(encoding="utf-8")
    assert "LIV reward report: base" in sub and len(embedded_images(sub)) == 2 + 2 * len(TASKS)
    back = [r for r in parse(sub).refs if not r.startswith("data:")]
    assert back == ["../../compare.html"] and (tmp_path / "models" / "base" / back[0]).resolve() == path.resolve()
    data = json.loads((tmp_path / "compare.json").read_text())
    assert list(data) == names and data[names[0]]["overall"]["text_goal"]["voc"] == 0.75

    bare = write_compare({"a": results}, tmp_path / "bare", model_pages=False).read_text(encoding="utf-8")
    assert not [r for r in parse(bare).refs if not r.startswith("data:")]
    assert not (tmp_path / "bare" / "models").exists()


def test_compare_curves_put_each_model_in_its_own_column(results):
    other = json.loads(json.dumps(results))
    ep = other["episodes"][0]
    ep["curves"]["text"] = [10 * x for x in ep["curves"]["text"]]  # another model, another range
    fig = compare_curves_figure({"a": results["episodes"][0], "b": ep})
    assert len(fig.axes) == 4
    for ax, name, source in ((fig.axes[0], "a", results["episodes"][0]), (fig.axes[1], "b", ep)):
        line = next(x for x in ax.get_lines() if x.get_gid() == f"text:{name}")
        v = np.asarray(source["curves"]["text"])
        np.testing.assert_allclose(line.get_ydata(), v)
        lo, hi = ax.get_ylim()
        assert lo <= v.min() and hi >= v.max() and hi - lo < 1.5 * (v.max() - v.min())
        assert ax.get_title(loc="left") == name
    assert TASKS[0] in fig.get_suptitle()
