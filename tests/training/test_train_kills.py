"""A run SIGKILLed at random moments, during checkpoint writes and during the final model save, and resumed
each time ends with the losses of an uninterrupted run and nothing partial or temporary in OUT."""

import json
import random
import re
import shutil
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


def _done(run):
    """The last step logged (a kill may have cut the last line)."""
    logged = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").is_file() else ""
    return max((int(m) for m in re.findall(r'^\{"step": (\d+),', logged, re.M)), default=0)


def _records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # ten training processes: minutes on 2 shared CPU cores
def test_a_run_killed_at_random_moments_and_resumed_equals_an_uninterrupted_one(tmp_path):
    rng = np.random.default_rng(0)
    data = write_frame_folders(tmp_path / "data", [(t, rng.integers(0, 256, (7, 32, 40, 3), dtype=np.uint8))
                                                   for t in ("open the drawer", "close the drawer") * 2]).parent
    began, whole, first_step = time.time(), _start(data, tmp_path / "whole"), None
    while whole.poll() is None:  # step times vary 10x with the machine's load: measure them
        if first_step is None and _done(tmp_path / "whole") >= 1:
            first_step = time.time() - began
        time.sleep(0.01)
    assert whole.returncode == 0 and first_step, whole.stdout.read()
    step_time = float(np.median([4 / r["samples_per_s"] for r in _records(tmp_path / "whole")]))

    run, chance = tmp_path / "killed", random.Random(0)
    caught, history = set(), []
    # Moments: "start" (a random time before the first step: imports, data check, resume), "step" (a
    # random time in the step after a random one beyond those logged), "checkpoint" and "final" (while a
    # checkpoint or the final model is being written).
    for moment in ["start", "checkpoint", "step", "checkpoint", "step", "step", "final"]:
        target = chance.randint(_done(run) + 1, 7) if moment == "step" and _done(run) < 7 else None
        if moment == "step" and target is None:
            continue
        # A save takes tens of milliseconds: on a loaded machine a kill can come after it; then try again
        # (a resume leaves a finished run as it is: first undo the saves the kill missed).
        for _ in range(4 if moment in ("checkpoint", "final") else 1):
            proc = _start(data, run, "--resume")
            deadline = time.time() + (chance.uniform(0.0, 0.9) * first_step if moment == "start" else 600)
            while proc.poll() is None and time.time() < deadline:
                if (moment in ("checkpoint", "final") and _writing(run, moment)) or (target and _done(run) >= target):
                    break
                time.sleep(0.001)
            if moment == "step":
                time.sleep(chance.uniform(0.0, 0.9) * step_time)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hit = moment in ("checkpoint", "final") and _writing(run, moment) is not None  # killed mid-write
            history.append((moment, hit, _done(run), [p.name for p in list_checkpoints(run)]))
            if hit:
                caught.add(moment)
                break
            if moment in ("checkpoint", "final") and (run / "model").is_dir():  # finished before the kill
                shutil.rmtree(run / "model")  # as if killed just before the final model's save
                if moment == "checkpoint":  # ... or before the last checkpoint's
                    shutil.rmtree(list_checkpoints(run)[-1])
    assert caught == {"checkpoint", "final"}, (caught, history)
    assert any(m == "step" and 0 < done < 9 for m, _, done, _ in history), history  # kills in mid-training

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
