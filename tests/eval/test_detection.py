"""Success detection: thresholds chosen on one split, F1 on the other, against hand-computed values."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from liv.eval.detection import (best_threshold, calibration_split, detection_scores, read_thresholds,
                                success_detection, write_thresholds)


def test_detection_scores_by_hand():
    d = detection_scores([0.9, 0.8, 0.3, 0.7], [True, False, False, True], threshold=0.75)
    assert (d["true_positives"], d["predicted"], d["positives"]) == (1, 2, 2)
    assert d["precision"] == 0.5 and d["recall"] == 0.5 and d["f1"] == 0.5
    none = detection_scores([0.1], [True], threshold=0.5)
    assert none["precision"] is None and none["recall"] == 0.0 and none["f1"] is None


def test_best_threshold_maximises_f1_lowest_on_ties():
    # sorted values 0.1(F) 0.4(T) 0.6(F) 0.9(T): t=0.25 -> P 2/3 R 1 F1 0.8; t=0.75 -> P 1 R 0.5 F1 0.667
    assert best_threshold([0.4, 0.9, 0.1, 0.6], [True, True, False, False]) == pytest.approx(0.25)
    assert best_threshold([0.2, 0.8], [False, True]) == pytest.approx(0.5)
    assert best_threshold([0.2, 0.8], [True, True]) is None


def test_calibration_split_halves_each_outcome_of_each_task():
    tasks = ["a"] * 5 + ["b"] * 3 + ["a"]
    labels = [True, True, True, False, False, True, False, None, None]
    calib = calibration_split(tasks, labels, seed=3)
    assert calib.tolist()[7:] == [False, False]  # unlabelled: in neither split
    assert calib[:3].sum() == 2 and calib[3:5].sum() == 1 and calib[5] and calib[6]
    assert calib.tolist() == calibration_split(tasks, labels, seed=3).tolist()


def test_the_threshold_reproduces_the_reported_f1_on_its_split(tmp_path):
    rng = np.random.default_rng(0)
    eps = [{"task": t, "succeeded": ok, "text_goal": {"final": float(rng.normal(0.6 if ok else 0.4, 0.1))}}
           for t in ("a", "b") for ok in [True] * 6 + [False] * 6]
    det = success_detection(eps, seed=1)
    mask = calibration_split([e["task"] for e in eps], [e["succeeded"] for e in eps], 1)
    for task in ("a", "b"):
        calib = [e for e, m in zip(eps, mask) if m and e["task"] == task]
        test = [e for e, m in zip(eps, mask) if not m and e["task"] == task]
        t = det["per_task"][task]["threshold"]
        assert t == best_threshold([e["text_goal"]["final"] for e in calib], [e["succeeded"] for e in calib])
        again = detection_scores([e["text_goal"]["final"] for e in test], [e["succeeded"] for e in test], t)
        assert det["per_task"][task]["f1"] == again["f1"] and det["per_task"][task]["n"] == 6
    path = write_thresholds(tmp_path / "th.json", det, "m")
    assert read_thresholds(path) == {k: v["threshold"] for k, v in det["per_task"].items()}
    with pytest.raises(ValueError, match="not a success-thresholds file"):
        read_thresholds(tmp_path / "missing.json")
    # A task without failures has no threshold and no figures: not available, never 0 or 1.
    only = success_detection([e for e in eps if e["succeeded"]], seed=0)
    assert only["per_task"]["a"]["threshold"] is None and only["per_task"]["a"]["f1"] is None


def test_evaluate_writes_thresholds_and_reward_emits_success(tmp_path):
    import liv
    from liv.cli import main
    from liv.data.frame_folders import write_frame_folders

    rng = np.random.default_rng(0)
    manifest = write_frame_folders(tmp_path / "ds", [("open the drawer", rng.integers(0, 256, (4, 16, 16, 3),
                                                                                      dtype=np.uint8))
                                                     for _ in range(8)])
    rows = list(csv.reader(open(manifest, newline="")))
    rows[0].append("success")
    for i, row in enumerate(rows[1:]):
        row.append(str(i % 2))
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    model = tmp_path / "model"
    liv.create("clip-tiny").save(model)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(manifest), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["detection"]["per_task"]["open the drawer"]["calibration_episodes"] == 4
    thresholds = read_thresholds(out / "success_thresholds.json")
    page = (out / "report.html").read_text()
    assert "Success detection" in page and f"{thresholds['open the drawer']:.4f}" in page
    reward_out = tmp_path / "rw"
    assert main(["reward", "--model", str(model), str(manifest), "--episode", "2", "--out", str(reward_out),
                 "--success-thresholds", str(out / "success_thresholds.json")]) == 0
    table = list(csv.DictReader(open(reward_out / "rewards.csv")))
    column = next(c for c in table[0] if c.startswith("success_"))
    t = thresholds["open the drawer"]
    sim = next(c for c in table[0] if c.startswith("sim_"))
    assert [int(r[column]) for r in table] == [int(float(r[sim]) >= t) for r in table]
