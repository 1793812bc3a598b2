"""Training in-process with periodic reward-quality evaluation on held-out episodes."""

import json

import numpy as np

import liv
from liv.data import write_frame_folders
from liv.train import train
from liv.training.config import build_config


def test_periodic_evaluation_is_logged(tmp_path):
    rng = np.random.default_rng(0)
    texts = ["open the drawer", "close the drawer"]
    write_frame_folders(tmp_path / "train", [(texts[i % 2], rng.integers(0, 256, (6, 24, 32, 3), np.uint8))
                                             for i in range(4)])
    write_frame_folders(tmp_path / "held", [(texts[i % 2], rng.integers(0, 256, (5, 24, 32, 3), np.uint8))
                                            for i in range(2)])
    config = build_config({"data": tmp_path / "train", "out": tmp_path / "run", "steps": 4, "batch_size": 4,
                           "num_workers": 0, "eval_data": tmp_path / "held", "eval_every": 2, "save_every": 0,
                           "progress": False, "lr": 1e-3})
    final = train(config)
    records = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    for key in ("text_goal/voc", "image_goal/voc", "retrieval_accuracy/final"):
        assert all(-1.0 <= r[key] <= 1.0 for r in records), key
    logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [4]  # log_every is 10: only the last step is logged
    model = liv.load(final)
    assert model.config.provenance["objective"] == "liv" and not model.training
