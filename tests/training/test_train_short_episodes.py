"""Training leaves out episodes too short to sample, names them and goes on; with none usable it refuses."""

import json

import numpy as np
import pytest

from liv.cli import main
from liv.data import write_frame_folders
from liv.train import TrainingError, train
from liv.training.config import build_config

TEXTS = ["open the drawer", "close the drawer"]


def _write(root, lengths):
    rng = np.random.default_rng(0)
    return write_frame_folders(root, [(TEXTS[i % 2], rng.integers(0, 256, (n, 24, 32, 3), np.uint8))
                                      for i, n in enumerate(lengths)])


def _config(data, out, **options):
    return build_config({"data": data, "out": out, "steps": 2, "batch_size": 4, "num_workers": 0, "save_every": 0,
                         "log_every": 1, "progress": False, "lr": 1e-3, **options})


def test_one_frame_episode_is_left_out_by_name_and_training_goes_on(tmp_path, capsys):
    manifest = _write(tmp_path / "data", [6, 5, 1, 4])
    train(_config(tmp_path / "data", tmp_path / "run"))
    out = capsys.readouterr().out
    assert (f"liv train: leaving out 1 of 4 episodes, too short for sampling mode 'episode' (fewer than 2 frames): "
            f"{manifest} line 4\n") in out
    assert "liv train: 3 episodes," in out
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2] and (tmp_path / "run" / "model" / "config.json").is_file()


def test_segment_mode_leaves_out_two_frame_episodes(tmp_path, capsys):
    manifest = _write(tmp_path / "data", [6, 2, 5, 2, 2, 2, 2, 2, 2])
    train(_config(tmp_path / "data", tmp_path / "run", sample_mode="segment", steps=1))
    out = capsys.readouterr().out
    named = ", ".join(f"{manifest} line {r}" for r in (3, 5, 6, 7, 8))
    assert ("leaving out 7 of 9 episodes, too short for sampling mode 'segment' (fewer than 3 frames): "
            f"{named} and 2 more") in out


def test_no_usable_episode_refuses_with_one_clear_line(tmp_path, capsys):
    manifest = _write(tmp_path / "data", [1, 1])
    with pytest.raises(TrainingError, match=r"no episode has the 2 frames that sampling needs: all 2 "
                                            r"are shorter \(.*line 2, .*line 3\)"):
        train(_config(tmp_path / "data", tmp_path / "run"))
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "cli"), "--steps", "1",
                 "--batch-size", "2", "--num-workers", "0", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"liv train: error: {tmp_path / 'data'}: 1 data problem(s)")
    assert "no episode has the 2 frames that sampling needs" in err
    assert f"{manifest} line 2" in err and "Traceback" not in err
    assert not (tmp_path / "cli" / "checkpoints").exists()
