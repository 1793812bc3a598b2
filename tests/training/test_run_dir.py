"""A run directory is never replaced by accident: refused without --resume or --overwrite; with
--overwrite the old run stays until the new one has its first checkpoint, and a replacement a kill
interrupted is finished (or undone) by the next start."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import liv.training.run_dir as run_dir
from liv.cli import main
from liv.data.frame_folders import write_frame_folders
from liv.training.checkpointing import list_checkpoints
from liv.training.run_dir import REPLACED, STAGING, RunDir

ARGS = ["--init", "clip-tiny", "--batch-size", "4", "--log-every", "1", "--num-workers", "0", "--lr", "1e-3",
        "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    write_frame_folders(root, [(t, rng.integers(0, 256, (6, 24, 32, 3), dtype=np.uint8))
                               for t in ("open the drawer", "close the drawer") * 2])
    return root


@pytest.fixture(scope="module")
def old_run(data, tmp_path_factory):
    """A finished 2-step run: checkpoints, model, metrics.jsonl, tensorboard."""
    run = tmp_path_factory.mktemp("runs") / "old"
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "2", "--save-every", "1", *ARGS]) == 0
    return run


def _snapshot(root):
    """{relative path: bytes} of every file under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _copy(run, tmp_path):
    import shutil

    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def test_a_used_run_directory_is_refused_in_one_line_and_left_intact(old_run, data, tmp_path, capsys):
    run = _copy(old_run, tmp_path)
    before = _snapshot(run)
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "3", *ARGS]) == 2  # a usage error
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"liv train: error: --out {run} already holds a run (checkpoints, model, metrics.jsonl")
    assert "--resume continues it, --overwrite starts a new one" in err
    assert _snapshot(run) == before


@pytest.mark.parametrize("extra", [[], ["--resume"], ["--overwrite"]])
def test_out_naming_a_file_is_one_clear_line(data, tmp_path, capsys, extra):
    (tmp_path / "taken").write_text("not a run")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "taken"), "--steps", "1", *ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert err == (f"liv train: error: --out {tmp_path / 'taken'} is a file; give a directory for the run "
                   "(it is created if missing)\n")
    assert (tmp_path / "taken").read_text() == "not a run"


def test_resume_and_overwrite_together_are_refused(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--resume", "--overwrite", *ARGS]) != 0
    assert "resume and overwrite exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_an_empty_or_new_directory_and_other_files_are_fine(data, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("mine")
    for out in ("empty", "new/nested", "notes"):
        assert main(["train", "--data", str(data), "--out", str(tmp_path / out), "--steps", "1", *ARGS]) == 0
        assert (tmp_path / out / "model" / "config.json").is_file()
    assert (tmp_path / "notes" / "README.txt").read_text() == "mine"


def test_overwrite_keeps_the_old_run_until_a_stopped_new_run_would_have_replaced_it(old_run, data, tmp_path, capsys):
    """lr 1e30: the new run logs step 1, then its loss is not finite and it stops, before any checkpoint."""
    run = _copy(old_run, tmp_path)
    before = _snapshot(run)
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "4", "--save-every", "100",
                 "--overwrite", *ARGS, "--lr", "1e30"]) == 3
    err = capsys.readouterr().err
    assert "loss is not finite" in err and err.count("\n") == 1
    assert err.endswith(f"This --overwrite run stopped before its first checkpoint: the run in {run} is as it was; "
                        "use --overwrite again to start over.\n")
    assert {k: v for k, v in _snapshot(run).items() if not k.startswith(STAGING)} == before
    staged = [json.loads(line)["step"] for line in (run / STAGING / "metrics.jsonl").read_text().splitlines()]
    assert staged == [1]  # the new run's log, kept aside for a look
    # Any next start drops the stopped run's files; here a --resume continues the old run.
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "3", "--resume", *ARGS]) == 0
    assert "(the run in " in capsys.readouterr().out and not (run / STAGING).exists()
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_overwrite_killed_before_its_first_checkpoint_loses_nothing_then_replaces(old_run, data, tmp_path):
    run = _copy(old_run, tmp_path)
    before = _snapshot(run)
    proc = subprocess.Popen([sys.executable, "-m", "liv", "train", "--data", str(data), "--out", str(run),
                             "--steps", "40", "--save-every", "30", "--overwrite", *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    logged = run / STAGING / "metrics.jsonl"
    while not (logged.is_file() and logged.read_text().count("\n") >= 3) and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list_checkpoints(run / STAGING), "the kill came too late to test anything"
    assert {k: v for k, v in _snapshot(run).items() if not k.startswith(STAGING)} == before

    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "3", "--save-every", "2",
                 "--overwrite", *ARGS]) == 0
    names = sorted(p.name for p in run.iterdir())
    assert names == ["checkpoints", "metrics.jsonl", "model", "tensorboard", "train_config.json"], names
    assert [p.name for p in list_checkpoints(run)] == ["step_00000002", "step_00000003"]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    old_events = {k for k in before if k.startswith("tensorboard")}
    assert old_events and not old_events & set(_snapshot(run))


class Crash(Exception):
    pass


def _fake_checkpoint(path):
    """The files that make a checkpoint directory complete (list_checkpoints), not loadable ones."""
    path.mkdir(parents=True)
    for name in ("training_state.pt", "model.safetensors", "config.json"):
        (path / name).write_text("new")


@pytest.mark.parametrize("crash_at", range(8))
def test_a_replacement_killed_at_any_rename_is_finished_by_the_next_start(tmp_path, monkeypatch, crash_at):
    """The old run has 4 entries, the new one 3: 4 renames in step 1, then one to .liv-replaced, then 3 in
    step 2. A crash before rename number ``crash_at`` (0-based) leaves a state the next start completes."""
    root = tmp_path / "run"
    (root / "tensorboard").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    (root / "metrics.jsonl").write_text("old\n")
    (root / "eval.jsonl").write_text("old\n")
    (root / "notes.txt").write_text("not the run's")
    staging = root / STAGING
    _fake_checkpoint(staging / "checkpoints" / "step_00000005")
    (staging / "metrics.jsonl").write_text("new\n")
    (staging / "tensorboard").mkdir()

    renames, real = [0], os.rename

    def rename(a, b):
        if renames[0] == crash_at:
            raise Crash
        renames[0] += 1
        real(a, b)

    monkeypatch.setattr(run_dir.os, "rename", rename)
    with pytest.raises(Crash):
        RunDir(root, replacing=True).commit()
    monkeypatch.setattr(run_dir.os, "rename", real)
    prepared = RunDir.prepare(root, overwrite=False)
    assert prepared.notes and "finished replacing" in prepared.notes[0]
    assert sorted(p.name for p in root.iterdir()) == ["checkpoints", "metrics.jsonl", "notes.txt", "tensorboard"]
    assert (root / "metrics.jsonl").read_text() == "new\n" and (root / "notes.txt").read_text() == "not the run's"
    assert [p.name for p in list_checkpoints(root)] == ["step_00000005"]
    assert not (root / REPLACED).exists()


def test_without_a_crash_the_replacement_makes_the_same_state(tmp_path):
    root = tmp_path / "run"
    (root / "model").mkdir(parents=True)
    _fake_checkpoint(root / STAGING / "checkpoints" / "step_00000001")
    run = RunDir(root, replacing=True)
    assert run.current == root / STAGING
    run.commit()
    assert sorted(p.name for p in root.iterdir()) == ["checkpoints"] and run.current == root


def test_an_init_that_cannot_be_read_leaves_no_run_behind(data, tmp_path, capsys):
    (tmp_path / "notes.pt").write_text("not a model")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--steps", "1", *ARGS,
                 "--init", str(tmp_path / "notes.pt")]) == 2
    assert "notes.pt" in capsys.readouterr().err
    assert not run.exists() or run_dir.run_entries(run) == []  # so the corrected command is not refused as a used --out
