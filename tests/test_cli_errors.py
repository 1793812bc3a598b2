"""Every mistake on a `liv` command line is answered by one line on stderr naming the option, file or line,
with a non-zero exit status and no traceback (``--debug`` shows it). Runs ``liv.cli.main`` in-process."""

from __future__ import annotations

import numpy as np
import pytest

import liv
from liv.cli import main


def liv_main(capsys, *argv) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``liv ARGV``; a SystemExit counts as its status."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:
        status = e.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def refused(capsys, *argv) -> str:
    """The one line on stderr with which ``liv ARGV`` fails (asserted: non-zero status, no traceback)."""
    status, _, err = liv_main(capsys, *argv)
    assert status not in (0, None), err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A clip-tiny model, a 2-episode frame-folder dataset, a 4-frame video, an image and a plain file."""
    from PIL import Image

    from liv.data.frame_folders import write_frame_folders
    from liv.data.video_write import write_video

    root = tmp_path_factory.mktemp("cli_errors")
    liv.create("clip-tiny", seed=0).save(root / "model")
    rng = np.random.default_rng(0)
    write_frame_folders(root / "frames", [("open the drawer", rng.integers(0, 256, (3, 16, 16, 3), np.uint8)),
                                          ("close the drawer", rng.integers(0, 256, (3, 16, 16, 3), np.uint8))])
    write_video(root / "clip.mp4", rng.integers(0, 256, (4, 16, 16, 3), np.uint8), fps=8)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8)).save(root / "goal.png")
    (root / "notes.txt").write_text("not a model\n")
    return {"root": root, "model": root / "model", "frames": root / "frames", "video": root / "clip.mp4",
            "image": root / "goal.png", "file": root / "notes.txt", "missing": root / "no_such_thing"}


# ------------------------------------------------------------------------------------ one test per kind

def test_out_naming_an_existing_file_is_refused_with_the_option(files, capsys):
    f = files
    line = refused(capsys, "reward", "--model", f["model"], f["video"], "--goal", "open", "--out", f["file"])
    assert line == f"liv reward: error: --out: {f['file']} is an existing file, not a folder"
    # with --data, --out is a .parquet file: an existing folder of that name is refused
    (f["root"] / "taken.parquet").mkdir(exist_ok=True)
    line = refused(capsys, "reward", "--model", f["model"], "--data", f["frames"], "--out", f["root"] / "taken.parquet")
    assert line.startswith("liv reward: error: --out: ") and "is a folder" in line
    assert str(f["file"]) in refused(capsys, "convert", f["model"], f["file"])
    assert "--out" in refused(capsys, "embed", "--model", f["model"], "--text", "a", "--out", f["root"])


def test_out_whose_parent_cannot_be_created_is_refused(files, capsys):
    under_a_file = files["file"] / "sub" / "out"
    line = refused(capsys, "evaluate", "--model", files["model"], "--data", files["frames"], "--out", under_a_file)
    assert line == f"liv evaluate: error: --out: cannot create {under_a_file}: {files['file']} is a file"


def test_empty_goal_on_a_dataset_is_refused_before_anything_is_written(files, tmp_path, capsys):
    for goal in ("", "   "):
        line = refused(capsys, "reward", "--model", files["model"], files["frames"], "--goal", goal,
                       "--out", tmp_path / "r")
        assert line == f"liv reward: error: --goal: must not be empty, got {goal!r}"
        assert not (tmp_path / "r").exists()


def test_empty_goal_on_a_single_video_names_goal_not_a_text_option(files, tmp_path, capsys):
    line = refused(capsys, "reward", "--model", files["model"], files["video"], "--goal", "", "--out", tmp_path / "r")
    assert "--goal" in line and "--text" not in line and "text=" not in line


def test_episode_with_an_empty_text_and_no_goal_is_refused(files, tmp_path, capsys):
    (tmp_path / "manifest.csv").write_text(f"directory,num_frames,text\n{files['frames'] / 'episode_000000'},3,\n")
    line = refused(capsys, "reward", "--model", files["model"], tmp_path, "--out", tmp_path / "r")
    assert f"{tmp_path / 'manifest.csv'} line 2: the episode has an empty text: give --goal" in line


def test_a_manifest_that_is_not_utf8_names_the_file_and_line(files, tmp_path, capsys):
    # (every place a manifest is read: tests/data/test_manifests.py)
    (tmp_path / "manifest.csv").write_bytes(
        b"directory,num_frames,text\n" + f"{files['frames'] / 'episode_000000'},3,open\n".encode()
        + f"{files['frames'] / 'episode_000001'},3,caf".encode() + b"\xe9\n")
    line = refused(capsys, "evaluate", "--model", files["model"], "--data", tmp_path, "--out", tmp_path / "out")
    assert f"{tmp_path / 'manifest.csv'} line 3: not UTF-8 text (byte 0xe9" in line


def test_an_empty_manifest_says_it_is_empty(files, tmp_path, capsys):
    (tmp_path / "manifest.csv").write_bytes(b"")
    line = refused(capsys, "reward", "--model", files["model"], tmp_path, "--out", tmp_path / "r")
    assert line == f"liv reward: error: {tmp_path / 'manifest.csv'}: the file is empty (0 bytes)"


# ------------------------------------------------------------------------------------ constraints, devices

def test_constraints_are_declared_once_and_also_checked_in_code(tmp_path):
    import argparse
    from dataclasses import dataclass, field

    from liv.cli_args import add_dataclass_arguments
    from liv.sim.planning import PlannerConfig
    from liv.training.config import build_config

    # the range batch_size declares is the one the command line checks (above) and build_config checks
    with pytest.raises(ValueError, match=r"^batch_size: must be >= 2, got 1$"):
        build_config({"data": tmp_path, "out": tmp_path, "batch_size": 1})
    with pytest.raises(ValueError, match=r"^samples: must be >= 2, got 1$"):
        PlannerConfig(samples=1).resolved()

    @dataclass
    class Typo:
        n: int = field(default=1, metadata={"minimum": 1})
        """A count."""

    with pytest.raises(TypeError, match="minimum"):
        add_dataclass_arguments(argparse.ArgumentParser(), Typo)


def test_device_names_are_checked_against_this_machine(monkeypatch):
    import torch

    from liv.models.devices import device_or_auto_problem, device_problem

    assert device_problem("cpu") is None and device_or_auto_problem("auto") is None
    assert "not a device" in device_problem("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "CUDA is not available" in device_problem("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_problem("cuda:1") is None and device_problem("cuda") is None
    assert "2 CUDA device(s)" in device_problem("cuda:2")


# ------------------------------------------------------------------------------------ --debug, internal errors

def test_debug_shows_the_traceback(files, capsys):
    assert str(files["file"]) in refused(capsys, "info", files["file"])
    for argv in (("--debug", "info", files["file"]), ("info", files["file"], "--debug")):
        status, _, err = liv_main(capsys, *argv)
        assert status == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("liv info: error:")


def test_an_internal_error_is_one_line_pointing_at_debug(files, capsys, monkeypatch):
    import liv.cli as cli

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setitem(cli.COMMANDS, "info", cli.Command(lambda: cli.InfoArgs, broken))
    line = refused(capsys, "info", files["model"])
    assert line.startswith("liv info: error: internal error, RuntimeError: boom") and "--debug" in line
    assert liv_main(capsys, "info", files["model"])[0] == cli.INTERNAL_ERROR


# ------------------------------------------------------------------------------------ every command, wrong inputs

def _sweep_cases(f, tmp):
    model, frames, video, file, missing = f["model"], f["frames"], f["video"], f["file"], f["missing"]
    out = tmp / "out"
    reward = ["reward", "--model", model, video, "--goal", "open", "--out", out]
    evaluate = ["evaluate", "--model", model, "--data", frames, "--out", out]
    compare = ["compare", "--models", model, "--data", frames, "--out", out]
    train = ["train", "--data", frames, "--out", out, "--no-progress"]
    epic = ["data", "epic-kitchens", "--annotations", file, "--frames", tmp, "--out", out]
    bc = ["bc", "--data", tmp, "--model", "clip-tiny", "--out", out]
    plan = ["plan", "--model", "clip-tiny", "--tasks", "reach-v3", "--out", out]
    return [
        (["info", missing], "model"),
        (["info"], "model"),
        (["info", model, "--bogus"], "--bogus"),
        (["convert", missing, out], "source"),
        (["convert", model, file], "out"),
        (["convert", model, ""], "out"),
        (["embed", "--model", model, "--out", tmp / "e.npz", "--text", ""], "--text"),
        (["embed", "--model", model, "--out", tmp / "e.npz", "--images", missing], "--images"),
        (["embed", "--model", missing, "--out", tmp / "e.npz", "--text", "a"], "--model"),
        (["embed", "--model", model, "--out", tmp, "--text", "a"], "--out"),
        (train[:2] + [missing] + train[3:], "--data"),
        (train + ["--batch-size", "abc"], "--batch-size"),
        (train + ["--batch-size", "1"], "--batch-size"),
        (train + ["--lr", "-1e-4"], "--lr"),
        (train + ["--lr", "nan"], "--lr"),
        (train + ["--steps", "0"], "--steps"),
        (train + ["--gamma", "1"], "--gamma"),
        (train + ["--init", ""], "--init"),
        (train + ["--objective", "nope"], "--objective"),
        (train + ["--num-workers", "-1"], "--num-workers"),
        (train + ["--crop-scale", "0", "1"], "--crop-scale"),
        (train[:4] + [file, "--no-progress", "--num-workers", "0"], "--out"),
        (reward[:3] + [missing] + reward[4:], "input"),
        (reward + ["--goal", ""], "--goal"),
        (reward + ["--batch-size", "0"], "--batch-size"),
        (reward + ["--episode", "-1"], "--episode"),
        (reward + ["--fps", "fast"], "--fps"),
        (reward + ["--fps", "-30"], "--fps"),
        (reward + ["--gamma", "1.5"], "--gamma"),
        (reward + ["--goal-image", missing], "--goal-image"),
        (reward + ["--goal-image", tmp], "--goal-image"),
        (reward + ["--camera", ""], "--camera"),
        (reward[:-1] + [file], "--out"),
        (evaluate[:4] + [missing] + evaluate[5:], "--data"),
        (evaluate[:-1] + [file], "--out"),
        (evaluate + ["--batch-size", "-3"], "--batch-size"),
        (evaluate + ["--extra-goal", " "], "--extra-goal"),
        (evaluate + ["--format", "avi"], "--format"),
        (evaluate + ["--max-episodes-per-task", "0"], "--max-episodes-per-task"),
        (evaluate + ["--device", ""], "--device"),
        (evaluate + ["--device", "gpu"], "--device"),
        (compare[:2] + [model, missing] + compare[3:], "--models"),
        (compare[:-1] + [file], "--out"),
        (compare + ["--max-episodes-per-task", "-1"], "--max-episodes-per-task"),
        (["data", "check", missing], "path"),
        (["data", "check", frames, "--decode-frames", "-1"], "--decode-frames"),
        (["data", "check", video, "--text", ""], "--text"),
        (["data", "check", frames, "--min-frames", "two"], "--min-frames"),
        (["data", "check", frames, "--context-length", "0"], "--context-length"),
        (epic[:3] + [missing] + epic[4:], "--annotations"),
        (epic[:5] + [file] + epic[6:], "--frames"),
        (epic[:-1] + [file / "manifest.csv"], "--out"),
        (epic + ["--min-frames", "0"], "--min-frames"),
        (["demo", "--out", file], "--out"),
        (["demo", "--out", out, "--steps", "0"], "--steps"),
        (["demo", "--out", out, "--lr", "nan"], "--lr"),
        (["demo", "--out", out, "--tasks", "drawer-open-v3", "no-such-task"], "--tasks"),
        (["demo", "--out", out, "--lr-schedule", "linear"], "--lr-schedule"),
        (["demo", "--out", out, "--preset", "clip-huge"], "--preset"),
        (["demo", "--out", out, "--size", "-64"], "--size"),
        (bc[:2] + [missing] + bc[3:], "--data"),
        (bc[:2] + [file] + bc[3:], "--data"),
        (bc[:-1] + [file], "--out"),
        (bc + ["--seeds", "0", "-1"], "--seeds"),
        (bc + ["--hidden", "256", "0"], "--hidden"),
        (bc + ["--size", "0", "64"], "--size"),
        (bc + ["--cache-dir", file], "--cache-dir"),
        (plan[:-1] + [file], "--out"),
        (plan + ["--samples", "1"], "--samples"),
        (plan + ["--elite-frac", "2"], "--elite-frac"),
        (plan + ["--planner", "ilqr"], "--planner"),
        (plan + ["--episodes", "0"], "--episodes"),
        (plan[:4] + ["no-such-task"] + plan[5:], "--tasks"),
        (["sim", "generate", "--out", file], "--out"),
        (["sim", "generate", "--episodes", "0"], "--episodes"),
        (["sim", "generate", "--size", "64"], "--size"),
        (["sim", "generate", "--camera", ""], "--camera"),
        (["sim", "generate", "--workers", "0"], "--workers"),
        (["sim", "generate", "--tasks", "no-such-task"], "--tasks"),
        (["sim"], "COMMAND"),
        (["nope"], "nope"),
    ]


def test_every_command_answers_wrong_input_with_one_line_naming_the_option(files, tmp_path, capsys):
    failures = []
    for argv, name in _sweep_cases(files, tmp_path):
        try:
            status, _, err = liv_main(capsys, *argv)
        except Exception as e:  # an exception out of main() is a failure too: list it with the others
            status, err = None, f"{type(e).__name__}: {e} (raised out of main)"
        lines = err.splitlines()
        if status in (0, None) or len(lines) != 1 or name not in err or "Traceback" in err:
            failures.append(f"liv {' '.join(map(str, argv))}\n  -> status {status}, stderr: {err!r}")
    assert not failures, f"{len(failures)} command lines not answered by one line naming the option:\n" + \
        "\n".join(failures)
    assert not (tmp_path / "out").exists()  # every one was refused before anything was written
