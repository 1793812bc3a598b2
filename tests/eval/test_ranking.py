"""Ranking and progress figures against hand-computed values (ties, tasks without failures) and in `liv evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liv.eval.ranking import failure_kinds, outcome_tau, pairwise_accuracy, progress_correlation, ranking


def test_pairwise_accuracy_counts_ties_as_misses():
    assert pairwise_accuracy([3.0, 1.0], [2.0, 1.0]) == pytest.approx(2 / 4)  # (3>2, 3>1, 1>2 no, 1=1 miss)
    assert pairwise_accuracy([1.0], [1.0]) == 0.0
    assert pairwise_accuracy([1.0, 2.0], []) is None and pairwise_accuracy([], [1.0]) is None


def test_kendall_tau_b_by_hand():
    # values 1,2,3,4 with outcomes F,T,F,T: concordant pairs (F<T by value): (1,2),(1,4),(3,4) = 3; discordant
    # (2,3) = 1; tied in outcome: 2 pairs. tau-b = (3 - 1) / sqrt((6 - 0) * (6 - 2)) = 2 / sqrt(24).
    assert outcome_tau([1, 2, 3, 4], [False, True, False, True]) == pytest.approx(2 / np.sqrt(24))
    assert outcome_tau([1, 2], [True, True]) is None and outcome_tau([5, 5], [True, False]) is None


def test_progress_correlation_by_hand():
    out = progress_correlation([0.0, 1.0, 2.0, 10.0], [0.0, 1.0, 2.0, 3.0])
    assert out["spearman"] == pytest.approx(1.0)
    v, p = np.array([0.0, 1.0, 2.0, 10.0]), np.arange(4.0)
    assert out["pearson"] == pytest.approx(np.corrcoef(v, p)[0, 1])
    assert progress_correlation([1.0, 1.0], [0.0, 1.0]) is None
    with pytest.raises(ValueError):
        progress_correlation([1.0, 2.0], [1.0])


def test_ranking_splits_by_kind_and_leaves_unmeasurable_figures_out():
    eps = [{"succeeded": True, "final": 0.9, "mean": 0.5, "kind": None},
           {"succeeded": True, "final": 0.2, "mean": 0.6, "kind": None},
           {"succeeded": False, "final": 0.5, "mean": 0.1, "kind": "random"},
           {"succeeded": False, "final": 0.1, "mean": 0.7, "kind": "noisy"}]
    r = ranking(eps)
    assert r["pairwise_final"] == pytest.approx(3 / 4) and r["pairwise_mean"] == pytest.approx(2 / 4)
    assert r["by_kind"]["random"] == {"pairwise_final": 0.5, "pairwise_mean": 1.0, "num_failure": 1}
    assert r["by_kind"]["noisy"] == {"pairwise_final": 1.0, "pairwise_mean": 0.0, "num_failure": 1}
    none = ranking(eps[:2])
    assert none["pairwise_final"] is None and none["kendall_tau_final"] is None and none["by_kind"] == {}


def test_failure_kinds_from_the_generation_record(tmp_path):
    (tmp_path / "meta").mkdir()
    assert failure_kinds(tmp_path, 2) == [None, None]
    record = {"episodes": [{"kind": "expert"}, {"kind": "failure", "failure_kind": "stopped"}, {"kind": "failure"}]}
    (tmp_path / "meta" / "liv_generation.json").write_text(json.dumps(record))
    assert failure_kinds(tmp_path, 3) == [None, "stopped", "failure"]
    assert failure_kinds(tmp_path, 4) == [None] * 4  # a record of other episodes is not used


def test_evaluate_reports_ranking_and_progress(tmp_path):
    import liv
    from liv.data.lerobot import read_lerobot
    from liv.data.lerobot_write import write_lerobot
    from liv.eval.metrics import evaluate_dataset

    rng = np.random.default_rng(0)
    eps = [{"frames": rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), "task": task,
            "success": np.array([False, False, False, ok]), "rewards": np.array([0.0, 1.0, 2.0, 4.0])}
           for task, ok in (("open", True), ("open", False), ("open", False), ("close", True))]
    root = write_lerobot(tmp_path / "ds", eps, fps=10)
    record = {"episodes": [{"kind": "expert"}, {"kind": "failure", "failure_kind": "noisy"},
                           {"kind": "failure", "failure_kind": "random"}, {"kind": "expert"}]}
    (root / "meta" / "liv_generation.json").write_text(json.dumps(record))
    res = evaluate_dataset(liv.create("clip-tiny"), read_lerobot(root))
    open_task, close_task = res["per_task"]
    assert set(open_task["ranking"]["by_kind"]) == {"noisy", "random"}
    finals = {e["index"]: e["text_goal"]["final"] for e in res["episodes"]}
    assert open_task["ranking"]["pairwise_final"] == pairwise_accuracy([finals[0]], [finals[1], finals[2]])
    assert close_task["ranking"]["pairwise_final"] is None  # no failure: not available, never 0 or 1
    assert [e["kind"] for e in res["episodes"]] == [None, "noisy", "random", None]
    e0 = res["episodes"][0]
    assert e0["progress"] == progress_correlation(e0["curves"]["text"], [0.0, 1.0, 2.0, 4.0])
    assert open_task["progress"]["num_episodes"] == 3
    assert res["overall"]["pairwise_final"] == open_task["ranking"]["pairwise_final"]
    assert res["dataset"]["progress_signal"] == "next.reward"

    # With a task_progress column (generated data), progress is measured against it, not next.reward.
    for ep in eps:
        ep["progress"] = np.array([0.0, 0.5, 0.25, 1.0])
    root = write_lerobot(tmp_path / "ds2", eps, fps=10)
    read = read_lerobot(root)
    assert read[0].progress.tolist() == [0.0, 0.5, 0.25, 1.0] and read[0].progress.dtype == np.float32
    res = evaluate_dataset(liv.create("clip-tiny"), read)
    e0 = res["episodes"][0]
    assert e0["progress"] == progress_correlation(e0["curves"]["text"], [0.0, 0.5, 0.25, 1.0])
    assert res["dataset"]["progress_signal"] == "task_progress"
