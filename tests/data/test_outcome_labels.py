"""A manifest's per-episode ``success`` column (frame folders and videos): read, checked, and used by `liv evaluate`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from liv.data import DataError
from liv.data.frame_folders import read_frame_folders, write_frame_folders


def _with_column(manifest, values, name="success"):
    rows = list(csv.reader(open(manifest, newline="")))
    rows[0].append(name)
    for row, value in zip(rows[1:], values):
        row.append(value)
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def _episodes(n, t=4):
    rng = np.random.default_rng(0)
    return [("open the drawer", rng.integers(0, 256, (t, 16, 16, 3), dtype=np.uint8)) for _ in range(n)]


def test_frame_folder_outcomes(tmp_path):
    manifest = write_frame_folders(tmp_path / "ds", _episodes(5))
    _with_column(manifest, ["1", "0", "", "True", "no"])
    ds = read_frame_folders(manifest)
    assert [e.outcome for e in ds] == [True, False, None, True, False]
    assert [e.succeeded for e in ds] == [True, False, None, True, False]
    assert all("success" not in e.meta for e in ds)


def test_a_bad_outcome_names_its_line(tmp_path):
    manifest = write_frame_folders(tmp_path / "ds", _episodes(3))
    _with_column(manifest, ["1", "maybe", "0"])
    with pytest.raises(DataError, match=r"manifest.csv line 3.*success 'maybe' must be 1 or 0"):
        read_frame_folders(manifest)
    errors: list[DataError] = []
    assert len(read_frame_folders(manifest, errors)) == 2 and len(errors) == 1


def test_video_manifest_outcomes(tmp_path):
    pytest.importorskip("av")
    from liv.data.video_files import read_video_manifest
    from liv.data.video_write import write_video

    for i in range(2):
        write_video(tmp_path / f"v{i}.mp4", _episodes(1, 6)[0][1], fps=10)
    (tmp_path / "manifest.csv").write_text("path,text,success\nv0.mp4,open the drawer,1\nv1.mp4,open the drawer,0\n")
    assert [e.succeeded for e in read_video_manifest(tmp_path)] == [True, False]


def test_evaluate_leaves_labelled_failures_out_of_voc_and_scores_auroc(tmp_path):
    pytest.importorskip("matplotlib")
    import liv
    from liv.cli import main

    manifest = write_frame_folders(tmp_path / "ds", _episodes(4, 5))
    _with_column(manifest, ["1", "1", "0", "0"])
    model = tmp_path / "model"
    liv.create("clip-tiny").save(model)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(manifest), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["succeeded"] for e in metrics["episodes"]] == [True, True, False, False]
    assert [e["evaluated"] for e in metrics["episodes"]] == [True, True, False, False]
    assert metrics["per_task"][0]["num_failure"] == 2 and metrics["overall"]["auroc"] is not None
