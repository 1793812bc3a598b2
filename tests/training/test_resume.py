"""`--resume` continues the run in OUT: its stored settings are the defaults (--data/--out/--resume is
enough), a differing option is refused by name, the newest complete checkpoint is the one resumed (the
last step's included), and a finished run is left as it is."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import liv
from liv.cli import main
from liv.cli_args import field_docs
from liv.data.frame_folders import write_frame_folders
from liv.training.checkpointing import RUN_CONFIG_FILE, list_checkpoints
from liv.training.config import TrainConfig
from liv.training.resume import MAY_CHANGE

# Settings away from the defaults, each of which would change the losses if a resume ignored it.
ARGS = ["--init", "clip-tiny", "--batch-size", "4", "--log-every", "1", "--num-workers", "0", "--lr", "1e-3",
        "--no-progress", "--seed", "3", "--steps", "6", "--save-every", "2", "--lr-schedule", "cosine",
        "--warmup-steps", "2", "--crop-scale", "0.5", "1.0"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    write_frame_folders(root, [(t, rng.integers(0, 256, (6, 24, 32, 3), dtype=np.uint8))
                               for t in ("open the drawer", "close the drawer", "turn the faucet left") * 2])
    return root


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory):
    """An uninterrupted 6-step run: checkpoints of steps 2, 4, 6 and the final model."""
    run = tmp_path_factory.mktemp("runs") / "whole"
    assert main(["train", "--data", str(data), "--out", str(run), *ARGS]) == 0
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002", "step_00000004", "step_00000006"]
    return run


def _copy(run, tmp_path):
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def _losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_weights(a, b):
    x, y = liv.load(a).clip.state_dict(), liv.load(b).clip.state_dict()
    return all(torch.equal(x[k], y[k]) for k in x)


def test_resume_with_only_data_out_and_resume_ends_as_the_uninterrupted_run(whole, data, tmp_path):
    run = _copy(whole, tmp_path)  # as if killed after step 2's checkpoint: later state removed
    for later in list_checkpoints(run)[1:]:
        shutil.rmtree(later)
    shutil.rmtree(run / "model")
    # A new process with no settings but where the run and its data are: it must not train to 10,000 steps.
    done = subprocess.run([sys.executable, "-m", "liv", "train", "--data", str(data), "--out", str(run), "--resume"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resumed from {run / 'checkpoints' / 'step_00000002'} at step 2 of 6" in done.stdout
    assert f"done at step 6; model in {run / 'model'}" in done.stdout
    assert "%|" not in done.stderr and "warning" not in done.stderr  # stored --no-progress; batch 4 of 6 episodes
    expected, got = _losses(whole), _losses(run)
    assert sorted(got) == list(range(1, 7))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002", "step_00000004", "step_00000006"]
    a, b = liv.load(whole / "model").clip.state_dict(), liv.load(run / "model").clip.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_options_that_differ_from_the_stored_settings_are_refused_by_name(whole, data, tmp_path, capsys):
    run = _copy(whole, tmp_path)
    before = _snapshot(run)
    code = main(["train", "--data", str(data), "--out", str(run), "--resume", "--seed", "4", "--lr", "0.5",
                 "--crop-scale", "0.5", "1.0", "--steps", "6"])  # the same crop scale and steps pass
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("liv train: error: --resume: --lr 0.5 (stored: 0.001), --seed 4 (stored: 3): differ "
                          f"from the run's settings in {run / RUN_CONFIG_FILE}; leave them out to continue the run "
                          "as it was, or add --resume-override to change them")
    assert "--crop-scale" not in err and "--steps," in err  # --steps is listed among those that may change
    assert _snapshot(run) == before

    assert main(["train", "--data", str(data), "--out", str(run), "--resume", "--steps", "4"]) == 2
    assert (f"--steps 4: the run in {run} is at step 6 already; give more steps to train it further"
            in capsys.readouterr().err)
    assert main(["train", "--data", str(data), "--out", str(run), "--seed", "4", "--resume-override"]) == 2
    assert "resume_override needs resume" in capsys.readouterr().err
    assert _snapshot(run) == before


def test_resume_override_changes_a_setting_and_steps_extend_a_run(whole, data, tmp_path, capsys):
    run = _copy(whole, tmp_path)
    assert main(["train", "--data", str(data), "--out", str(run), "--resume", "--steps", "7"]) == 0
    assert f"resumed from {run / 'checkpoints' / 'step_00000006'} at step 6 of 7" in capsys.readouterr().out
    assert sorted(_losses(run)) == list(range(1, 8))
    stored = json.loads((run / RUN_CONFIG_FILE).read_text())
    assert stored["steps"] == 7 and stored["seed"] == 3 and stored["lr_schedule"] == "cosine"
    assert liv.load(run / "model").config.provenance["step"] == 7

    assert main(["train", "--data", str(data), "--out", str(run), "--resume", "--steps", "8", "--lr", "2e-3",
                 "--resume-override"]) == 0
    stored = json.loads((run / RUN_CONFIG_FILE).read_text())
    assert stored["steps"] == 8 and stored["lr"] == 2e-3  # the next plain --resume goes on with these
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # step 8's update (index 7) on the cosine from 2e-3 after 2 warm-up steps to 0 after step 8
    assert last["step"] == 8 and last["lr"] == pytest.approx(2e-3 * 0.5 * (1 + np.cos(np.pi * 5 / 6)))


def test_a_finished_run_is_left_as_it_is(whole, data, tmp_path, capsys):
    run = _copy(whole, tmp_path)
    before = _snapshot(run)
    assert main(["train", "--data", str(data), "--out", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert out == (f"liv train: the run in {run} is finished: it reached its last step, 6, and its model is in "
                   f"{run / 'model'}; nothing to do (--resume --steps N with N > 6 trains it further)\n")
    assert _snapshot(run) == before


def test_the_last_steps_checkpoint_is_resumed_when_only_the_final_model_is_missing(whole, data, tmp_path, capsys):
    """Killed between the last checkpoint and the final model; the run predates OUT/train_config.json, so its
    settings come from the checkpoint's copy."""
    run = _copy(whole, tmp_path)
    shutil.rmtree(run / "model")
    (run / RUN_CONFIG_FILE).unlink()
    last = _snapshot(run / "checkpoints" / "step_00000006")
    assert main(["train", "--data", str(data), "--out", str(run), "--resume"]) == 0
    assert f"resumed from {run / 'checkpoints' / 'step_00000006'} at step 6 of 6" in capsys.readouterr().out
    assert _snapshot(run / "checkpoints" / "step_00000006") == last  # not written again
    assert _same_weights(whole / "model", run / "model") and _losses(run) == _losses(whole)
    assert json.loads((run / RUN_CONFIG_FILE).read_text())["seed"] == 3


def test_an_incomplete_newest_checkpoint_is_passed_over(whole, data, tmp_path, capsys):
    run = _copy(whole, tmp_path)
    shutil.rmtree(run / "model")
    (run / "checkpoints" / "step_00000006" / "model.safetensors").unlink()  # damaged by hand, or another tool
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002", "step_00000004"]
    assert main(["train", "--data", str(data), "--out", str(run), "--resume"]) == 0
    assert f"resumed from {run / 'checkpoints' / 'step_00000004'} at step 4 of 6" in capsys.readouterr().out
    got, expected = _losses(run), _losses(whole)
    assert all(got[s] == pytest.approx(expected[s], abs=1e-6) for s in expected)
    assert len(list_checkpoints(run)) == 3


def test_the_options_that_may_change_are_the_ones_the_help_names():
    doc = field_docs(TrainConfig)["resume"].split(" except ", 1)[1]
    named = [word.strip(",.()") for word in doc.split() if word.startswith("--")]
    assert sorted(named) == sorted("--" + name.replace("_", "-") for name in MAY_CHANGE)


def test_switching_the_preset_on_override_undoes_the_old_presets_values(tmp_path):
    from liv.training.config import TRAIN_PRESETS, TrainConfig, build_config
    from liv.training.resume import resume_config, write_settings

    run = tmp_path / "run"
    run.mkdir()
    write_settings(run, build_config({"preset": "pretrain", "data": tmp_path, "out": run, "init": "clip-tiny"}))
    config = resume_config({"out": run, "resume": True, "resume_override": True, "preset": "finetune",
                            "data": tmp_path})
    defaults = TrainConfig(data=tmp_path, out=run)
    for key in TRAIN_PRESETS["pretrain"]:  # batch 512, 200k steps, segments...: back to fine-tuning's values
        assert getattr(config, key) == getattr(defaults, key), key
    assert config.init == "clip-tiny" and config.preset == "finetune"
