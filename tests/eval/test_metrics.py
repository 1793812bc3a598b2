"""Value-curve metrics on hand-built curves with known answers, and the dataset evaluation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import liv
from liv.data.episodes import ArrayFrames, Episode, EpisodeDataset
from liv.eval.metrics import (alignment, auroc, average_ranks, confusion_matrix, evaluate_dataset, negative_rate,
                              retrieval_accuracy, select_episodes, voc, without_curves)


# ------------------------------------------------------------------------------------ naive references
def naive_ranks(x):
    return [sum(y < xi for y in x) + (sum(y == xi for y in x) + 1) / 2 for xi in x]


def naive_pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / (va * vb) ** 0.5


def naive_auroc(s, f):
    return sum((x > y) + 0.5 * (x == y) for x in s for y in f) / (len(s) * len(f))


# ------------------------------------------------------------------------------------ curve metrics
def test_perfect_linear_curve():
    v = 2.0 * np.arange(10) + 3.0
    assert voc(v) == pytest.approx(1.0)
    assert negative_rate(v) == 0.0
    assert alignment(v) == pytest.approx(1.0)


def test_reversed_curve():
    v = np.array([0.9, 0.5, 0.2, -0.3])
    assert voc(v) == pytest.approx(-1.0)
    assert negative_rate(v) == 1.0
    assert alignment(v) < -0.9


def test_monotone_but_curved_alignment_below_one():
    # Pearson of (1, 2, 4, 8) with t/T: 11.5 / sqrt(28.75 * 5) = 0.959166, worked out by hand.
    v = [1.0, 2.0, 4.0, 8.0]
    assert voc(v) == pytest.approx(1.0)
    assert alignment(v) == pytest.approx(0.959166, abs=1e-6)


def test_constant_and_short_curves_are_defined_as_zero():
    for v in ([0.3] * 7, [0.5], []):
        assert voc(v) == 0.0
        assert alignment(v) == 0.0
        assert negative_rate(v) == 0.0


def test_ties_get_average_ranks():
    assert average_ranks([3.0, 1.0, 1.0, 2.0]).tolist() == [4.0, 1.5, 1.5, 3.0]
    # Spearman of ranks (1.5, 1.5, 3, 4) with (1, 2, 3, 4) = 4.5 / sqrt(4.5 * 5).
    assert voc([1.0, 1.0, 2.0, 3.0]) == pytest.approx(0.948683, abs=1e-6)


def test_negative_rate_counts_only_strict_decreases():
    assert negative_rate([0.0, 1.0, 0.5, 0.5, 2.0]) == 0.25


def test_random_curves_against_naive_implementation():
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.integers(0, 6, size=17).astype(float)  # few levels: many ties
        t = list(range(1, 18))
        assert voc(v) == pytest.approx(naive_pearson(naive_ranks(list(v)), t), abs=1e-12)
        assert alignment(v) == pytest.approx(naive_pearson(list(v), [x / 17 for x in t]), abs=1e-12)
    assert voc(torch.tensor([0.1, 0.3, 0.2])) == pytest.approx(0.5)


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        voc([0.1, float("nan")])


# ------------------------------------------------------------------------------------ confusion, retrieval, AUROC
def test_confusion_matrix_means_rows_per_task_and_retrieval():
    scores = np.array([[0.9, 0.1, 0.0],
                       [0.7, 0.3, 0.2],
                       [0.2, 0.4, 0.6],   # task 1 episode that prefers text 2 (a distractor)
                       [0.1, 0.8, 0.0]])
    labels = [0, 0, 1, 1]
    m = confusion_matrix(scores, labels)
    np.testing.assert_allclose(m, [[0.8, 0.2, 0.1], [0.15, 0.6, 0.3]])
    assert m.argmax(axis=1).tolist() == [0, 1]
    assert retrieval_accuracy(scores, labels) == 0.75
    assert retrieval_accuracy(m, [0, 1]) == 1.0


def test_confusion_matrix_missing_task_row_is_nan_and_skipped():
    m = confusion_matrix([[0.2, 0.5]], [1], num_tasks=2)
    assert np.isnan(m[0]).all() and m[1].tolist() == [0.2, 0.5]
    assert retrieval_accuracy(m, [0, 1]) == 1.0


def test_retrieval_ties_count_as_expected_random_choice():
    assert retrieval_accuracy([[0.5, 0.5, 0.1]], [0]) == 0.5
    assert retrieval_accuracy([[0.5, 0.5, 0.5]], [2]) == pytest.approx(1 / 3)
    assert retrieval_accuracy([[0.5, 0.6, 0.5]], [0]) == 0.0


def test_auroc_known_values():
    assert auroc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert auroc([1.0, 2.0], [3.0, 4.0]) == 0.0
    assert auroc([1.0, 1.0], [1.0]) == 0.5
    assert auroc([1.0, 2.0, 3.0], [2.0, 2.0]) == 0.5
    assert auroc([0.9, 0.4, 0.6], [0.5, 0.4]) == 0.75
    rng = np.random.default_rng(1)
    s, f = rng.integers(0, 5, 9).astype(float), rng.integers(0, 5, 7).astype(float)
    assert auroc(s, f) == pytest.approx(naive_auroc(list(s), list(f)), abs=1e-12)
    with pytest.raises(ValueError):
        auroc([], [1.0])


# ------------------------------------------------------------------------------------ dataset evaluation
class ColourModel:
    """Stub model: an image embeds to its mean RGB, a colour name to its axis; counts encoder calls."""

    AXES = {"red": [1.0, 0.0, 0.0], "green": [0.0, 1.0, 0.0], "blue": [0.0, 0.0, 1.0]}

    def __init__(self):
        self.config = SimpleNamespace(preset=None)
        self.embed_dim, self.image_resolution = 3, 8
        self.image_calls, self.text_calls = 0, 0

    def encode_images(self, frames, batch_size=64):
        self.image_calls += 1
        return torch.as_tensor(np.asarray(frames), dtype=torch.float32).mean(dim=(1, 2)) / 255

    def encode_texts(self, texts, strict_text=False):
        self.text_calls += 1
        return torch.tensor([self.AXES[t] for t in texts])


def fade(start, end, n=6):
    """Frames whose colour moves linearly from ``start`` to ``end`` (RGB 0..255) -> (n, 4, 4, 3) uint8."""
    w = np.linspace(0, 1, n)[:, None]
    colours = (1 - w) * np.array(start) + w * np.array(end)
    return np.broadcast_to(colours[:, None, None, :], (n, 4, 4, 3)).round().astype(np.uint8).copy()


def colour_dataset():
    def ep(frames, text, success=None):
        flags = None if success is None else np.array([False] * (len(frames) - 1) + [success])
        return Episode(ArrayFrames(frames), text, source=f"{text}", success=flags)

    return EpisodeDataset([
        ep(fade([0, 0, 255], [255, 0, 0]), "red", True),      # blue -> red: text value rises
        ep(fade([0, 0, 255], [255, 0, 0], 5), "red", True),
        ep(fade([255, 0, 0], [0, 0, 255]), "red", False),     # the failure walks away from red
        ep(fade([255, 0, 0], [0, 255, 0]), "green", True),    # red -> green
    ], root="mem", format="memory")


def test_evaluate_dataset_on_a_stub_with_known_answers():
    model = ColourModel()
    r = evaluate_dataset(model, colour_dataset(), extra_goals=["blue", "red"])
    assert model.text_calls == 1 and model.image_calls == 4  # texts once, each episode once
    assert r["tasks"] == ["red", "green"] and r["goal_texts"] == ["red", "green", "blue"]
    assert r["dataset"]["success_flags"] and r["dataset"]["num_evaluated"] == 3
    assert [e["evaluated"] for e in r["episodes"]] == [True, True, False, True]
    ov = r["overall"]
    assert ov["text_goal"]["voc"] == pytest.approx(1.0) and ov["text_goal"]["negative_rate"] == 0.0
    assert ov["image_goal"]["voc"] == pytest.approx(1.0)
    # Successful episodes end on their pure colour: final similarity 1 with own text, 0 with the others.
    assert r["confusion"]["final"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert ov["retrieval_accuracy"]["final"] == 1.0 and ov["task_retrieval_accuracy"]["final"] == 1.0
    # Mean variant: red->green at equal weights mean cos(green) = cos(red), a tie: counts one half.
    assert r["per_task"][1]["retrieval_accuracy"]["mean"] == 0.5
    # The failed red episode ends blue (final 0.0) below both successes (final 1.0).
    assert r["per_task"][0]["auroc"] == 1.0 and r["per_task"][1]["auroc"] is None
    assert ov["auroc"] == 1.0 and ov["num_auroc_tasks"] == 1
    json.dumps(without_curves(r), allow_nan=False)
    assert "curves" not in without_curves(r)["episodes"][0] and "curves" in r["episodes"][0]


def test_evaluate_dataset_without_flags_uses_all_and_respects_max_per_task():
    ds = colour_dataset()
    for e in ds:
        e.success = None
    r = evaluate_dataset(ColourModel(), ds, max_episodes_per_task=2)
    assert [e["index"] for e in r["episodes"]] == [0, 1, 3]
    assert r["dataset"]["num_evaluated"] == 3 and r["overall"]["auroc"] is None


def test_max_per_task_keeps_failures_listed_after_the_successes():
    # Task "red" lists two successes, then its failure: the first 1 per task would drop the failure and AUROC.
    r = evaluate_dataset(ColourModel(), colour_dataset(), max_episodes_per_task=1)
    assert [e["index"] for e in r["episodes"]] == [0, 2, 3]  # red's first success and its failure, green's success
    assert r["per_task"][0]["num_success"] == 1 and r["per_task"][0]["num_failure"] == 1
    assert r["per_task"][0]["auroc"] == 1.0 and r["overall"]["auroc"] == 1.0
    selection = r["dataset"]["selection"]
    assert selection["kept"] == {"success": 2, "failure": 1, "unknown": 0}
    assert selection["dropped"] == {"success": 1, "failure": 0, "unknown": 0}
    assert selection["note"] == ("max_episodes_per_task 1 (per task and outcome): kept success 2, failure 1; "
                                 "dropped success 1 of 4 episodes")
    everything = evaluate_dataset(ColourModel(), colour_dataset(), max_episodes_per_task=2)["dataset"]["selection"]
    assert everything["note"] is None and everything["dropped"] == {"success": 0, "failure": 0, "unknown": 0}


def test_select_episodes_caps_each_outcome_of_each_task():
    outcomes = [True, True, True, False, False, False, None, None, True, False]
    texts = ["a"] * 8 + ["b"] * 2
    ds = EpisodeDataset([Episode(ArrayFrames(np.zeros((2, 4, 4, 3), np.uint8)), t, source=str(i),
                                 success=None if o is None else np.array([False, o]))
                         for i, (t, o) in enumerate(zip(texts, outcomes))], root="mem", format="memory")
    assert select_episodes(ds, 2)[0] == [0, 1, 3, 4, 6, 7, 8, 9]
    assert select_episodes(ds, 1)[0] == [0, 3, 6, 8, 9]
    assert select_episodes(ds, None) == (list(range(10)), {
        "max_episodes_per_task": None, "kept": {"success": 4, "failure": 4, "unknown": 2},
        "dropped": {"success": 0, "failure": 0, "unknown": 0}, "note": None})
    with pytest.raises(ValueError, match="max_per_task must be >= 1"):
        select_episodes(ds, 0)


def test_evaluate_dataset_curves_equal_model_similarity():
    model = liv.create("clip-tiny", seed=0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8) for n in (5, 4, 3)]
    texts = ["open the drawer", "close the drawer", "open the drawer"]
    ds = EpisodeDataset([Episode(ArrayFrames(f), t, source=str(i)) for i, (f, t) in enumerate(zip(frames, texts))],
                        root="mem", format="memory")
    r = evaluate_dataset(model, ds)
    for e, f, t in zip(r["episodes"], frames, texts):
        np.testing.assert_allclose(e["curves"]["text"], model.similarity(f, t).numpy(), atol=1e-5)
        np.testing.assert_allclose(e["curves"]["image"], model.similarity(f, f[-1]).numpy(), atol=1e-5)
        assert e["text_goal"]["voc"] == pytest.approx(voc(model.similarity(f, t)), abs=1e-9)
    final_close = model.similarity(np.stack([frames[0][-1], frames[2][-1]]), "close the drawer").mean()
    assert r["confusion"]["final"][0][1] == pytest.approx(float(final_close), abs=1e-5)
