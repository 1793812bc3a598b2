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
    # Calling every episode a success is best here (F1 0.8): the threshold is -1, the least similarity,
    # which a thresholds file may hold (not "the lowest value minus 1", which it may not).
    assert best_threshold([0.1, 0.5, 0.9], [True, False, True]) == -1.0


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
    (tmp_path / "other.json").write_text('{"thresholds": [1, 2]}')
    with pytest.raises(ValueError, match="not a success-thresholds file"):
        read_thresholds(tmp_path / "other.json")
    # A task without failures has no threshold and no figures: not available, never 0 or 1.
    only = success_detection([e for e in eps if e["succeeded"]], seed=0)
    assert only["per_task"]["a"]["threshold"] is None and only["per_task"]["a"]["f1"] is None


def test_small_tasks_numpy_labels_and_unlabelled_episodes():
    eps = [{"task": "a", "succeeded": np.bool_(ok), "text_goal": {"final": f}}
           for ok, f in ((True, 0.9), (True, 0.8), (False, 0.1))]
    eps.append({"task": "a", "succeeded": None, "text_goal": {"final": 0.5}})
    det = success_detection(eps, seed=0)
    a = det["per_task"]["a"]
    # numpy bools are labels: 1 success and 1 failure calibrate; the held-out half is one success alone,
    # where F1 would be trivially 1: no figures, and nothing pooled.
    assert a["calibration_episodes"] == 2 and a["threshold"] is not None and a["n"] == 1
    assert a["f1"] is None and det["overall"]["n"] == 0 and det["overall"]["f1"] is None


def test_thresholds_file_errors_are_one_line(tmp_path):
    from liv.eval.detection import thresholds_for_goals

    with pytest.raises(ValueError, match="no such success-thresholds file"):
        read_thresholds(tmp_path / "missing.json")
    bad = tmp_path / "nan.json"
    bad.write_text(json.dumps({"thresholds": {"open": float("nan")}}))
    with pytest.raises(ValueError, match="threshold of 'open' is nan"):
        read_thresholds(bad)
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"thresholds": {"open": 0.5}}))
    bom = tmp_path / "bom.json"  # as a Windows editor saves it
    bom.write_bytes(b"\xef\xbb\xbf" + good.read_bytes())
    assert read_thresholds(bom) == {"open": 0.5}
    with pytest.raises(ValueError, match=r"no threshold for the goal text\(s\) \['close'\]"):
        thresholds_for_goals(good, ["open", "close"])
    with pytest.raises(ValueError, match="every goal here is an image"):
        thresholds_for_goals(good, [], image_goals=1)


def _labelled_frames(tmp_path, name="ds", labelled=True):
    from liv.data.frame_folders import write_frame_folders

    rng = np.random.default_rng(0)
    manifest = write_frame_folders(tmp_path / name, [("open the drawer", rng.integers(0, 256, (6, 16, 16, 3),
                                                                                      dtype=np.uint8))
                                                     for _ in range(8)])
    if labelled:
        rows = list(csv.reader(open(manifest, newline="")))
        rows[0].append("success")
        for i, row in enumerate(rows[1:]):
            row.append(str(i % 2))
        with open(manifest, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return manifest


def test_evaluate_writes_thresholds_and_reward_emits_success(tmp_path):
    import liv
    from liv.cli import main

    manifest = _labelled_frames(tmp_path)
    model = tmp_path / "model"
    liv.create("clip-tiny").save(model)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(manifest), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["detection"]["per_task"]["open the drawer"]["calibration_episodes"] == 4
    thresholds = read_thresholds(out / "success_thresholds.json")
    page = (out / "report.html").read_text()
    assert "Success detection" in page and f"{thresholds['open the drawer']:.4f}" in page

    # A threshold between the episode's similarities, so that the flag takes both values.
    probe = tmp_path / "probe"
    assert main(["reward", "--model", str(model), str(manifest), "--episode", "2", "--out", str(probe)]) == 0
    sims = [float(r["sim_open_the_drawer"]) for r in csv.DictReader(open(probe / "rewards.csv"))]
    t = float(np.median(sims))
    hand = tmp_path / "hand.json"
    hand.write_text(json.dumps({"thresholds": {"open the drawer": t}}))
    flags = {}
    for scale in ("similarity", "value"):
        rw = tmp_path / f"rw_{scale}"
        assert main(["reward", "--model", str(model), str(manifest), "--episode", "2", "--out", str(rw),
                     "--scale", scale, "--success-thresholds", str(hand)]) == 0
        flags[scale] = [int(r["success_open_the_drawer"]) for r in csv.DictReader(open(rw / "rewards.csv"))]
    assert flags["similarity"] == [int(v >= t) for v in sims] and 0 < sum(flags["similarity"]) < len(sims)
    assert flags["value"] == flags["similarity"]  # the threshold is on S whatever --scale shows

    # --data: a success column beside every row of a text goal.
    import pyarrow.parquet as pq

    table = pq.read_table(_reward_data(main, model, manifest, hand, tmp_path)).to_pandas()
    own = table[table["goal"] == "open the drawer"]
    assert own["success"].tolist() == [bool(v >= t) for v in own["value"]]
    assert own["success"].any() and not own["success"].all()


def _reward_data(main, model, manifest, thresholds, tmp_path):
    path = tmp_path / "values.parquet"
    assert main(["reward", "--model", str(model), "--data", str(manifest), "--out", str(path),
                 "--success-thresholds", str(thresholds)]) == 0
    return path


def test_calibrate_on_another_dataset_and_stale_thresholds(tmp_path, capsys):
    import liv
    from liv.cli import main

    manifest = _labelled_frames(tmp_path)
    model = tmp_path / "model"
    liv.create("clip-tiny").save(model)
    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(model), "--data", str(manifest), "--out", str(out)]
    assert main(args + ["--calibrate-on", str(manifest)]) == 0
    det = json.loads((out / "metrics.json").read_text())["detection"]
    a = det["per_task"]["open the drawer"]
    assert det["calibration"] == "dataset" and a["calibration_episodes"] == 8 and a["n"] == 8
    # Calibrated on the very episodes it is measured on, the best-F1 threshold reproduces its own F1.
    assert a["f1"] == det["overall"]["f1"]
    episodes = json.loads((out / "metrics.json").read_text())["episodes"]
    finals, labels = [e["text_goal"]["final"] for e in episodes], [e["succeeded"] for e in episodes]
    assert a["threshold"] == best_threshold(finals, labels)
    assert a["f1"] == detection_scores(finals, labels, a["threshold"])["f1"]

    unlabelled = _labelled_frames(tmp_path, "plain", labelled=False)
    assert main(args + ["--calibrate-on", str(unlabelled)]) == 2
    assert "no episode has an outcome" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(model), "--data", str(unlabelled), "--out", str(tmp_path / "x"),
                 "--calibrate-on", str(manifest)]) == 2
    assert "--data has no labelled episode" in capsys.readouterr().err
    # Evaluating unlabelled data into the same folder removes the thresholds an earlier run left there.
    assert (out / "success_thresholds.json").is_file()
    assert main(["evaluate", "--model", str(model), "--data", str(unlabelled), "--out", str(out)]) == 0
    assert not (out / "success_thresholds.json").exists() and "removed the earlier" in capsys.readouterr().err
