"""A run SIGKILLed at random moments, during checkpoint writes and during the final model save, and resumed
each time ends with the losses of an uninterrupted run and nothing partial or temporary in OUT."""

import json
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import liv
from liv.data.frame_folders import write_frame_folders
from liv.training.checkpointing import list_checkpoints

ARGS = ["--init", "clip-tiny", "--batch-size", "4", "--log-every", "1", "--num-workers", "0", "--lr", "1e-3",
        "--no-progress", "--seed", "5", "--steps", "9", "--save-every", "3", "--lr-schedule", "cosine",
        "--warmup-steps", "2"]


def _start(data, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "liv", "train", "--data", str(data), "--out", str(out), *ARGS,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _writing(run, moment):
    """A temporary of a save in progress, for ``moment`` 'checkpoint' or 'final', or None."""
    if moment == "checkpoint":
        return next(iter((run / "checkpoints").glob(".step_*.tmp-*")), None)
    # the final model's temporary directory, or the temporary files of a model saved in place
    return next(iter([*run.glob(".model.tmp-*"), *(run / "model").glob(".*.tmp")]), None)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # ten training processes: minutes on 2 shared CPU cores
def test_a_run_killed_at_random_moments_and_resumed_equals_an_uninterrupted_one(tmp_path):
    rng = np.random.default_rng(0)
    data = write_frame_folders(tmp_path / "data", [(t, rng.integers(0, 256, (7, 32, 40, 3), dtype=np.uint8))
                                                   for t in ("open the drawer", "close the drawer") * 2]).parent
    whole = _start(data, tmp_path / "whole")
    assert whole.wait(timeout=600) == 0, whole.stdout.read()

    run, chance = tmp_path / "killed", random.Random(0)
    caught, history = set(), []
    for moment in ["random", "checkpoint", "random", "random", "checkpoint", "random", "final"]:
        # A save takes tens of milliseconds: on a loaded machine a kill can come after it; then try again
        # (once the run is complete, resuming it saves its last checkpoint and the final model again).
        for _ in range(1 if moment == "random" else 4):
            proc = _start(data, run, "--resume")
            deadline = time.time() + (chance.uniform(2.0, 10.0) if moment == "random" else 600)
            while proc.poll() is None and time.time() < deadline and not (moment != "random"
                                                                           and _writing(run, moment)):
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hit = moment != "random" and _writing(run, moment) is not None  # the kill came mid-write
            logged = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").is_file() else ""
            done = max((int(m) for m in re.findall(r'^\{"step": (\d+),', logged, re.M)), default=0)
            history.append((moment, hit, done, [p.name for p in list_checkpoints(run)]))
            if hit:
                caught.add(moment)
                break
    assert caught == {"checkpoint", "final"}, (caught, history)
    assert any(0 < done < 9 for _, _, done, _ in history), history  # some kills came in the middle of training

    resumed = _start(data, run, "--resume")
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    expected, got = _records(tmp_path / "whole"), _records(run)
    assert [r["step"] for r in got] == list(range(1, 10))  # each step once: a resume trims what it logs again
    for a, b in zip(expected, got):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-6) and b["lr"] == a["lr"], a["step"]
    leftovers = [p for p in run.rglob("*") if ".tmp" in p.name or p.name.startswith(".liv-")]
    assert leftovers == []
    assert [p.name for p in list_checkpoints(run)] == ["step_00000003", "step_00000006", "step_00000009"]
    a, b = liv.load(tmp_path / "whole" / "model"), liv.load(run / "model")
    assert all(np.allclose(x, y, atol=1e-6) for x, y in zip(a.clip.state_dict().values(),
                                                             b.clip.state_dict().values()))
