"""`liv train` through its real CLI: a run killed and resumed equals an uninterrupted one; torchrun with
2 processes equals one process on the same global batch."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import liv
from liv.data.frame_folders import write_frame_folders

COMMON = ["--init", "clip-tiny", "--batch-size", "4", "--log-every", "1", "--num-workers", "0", "--lr", "1e-3",
          "--no-progress", "--seed", "3"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    texts = ["open the drawer", "close the drawer", "turn the faucet left"]
    episodes = [(texts[i % 3], rng.integers(0, 256, (8 + i, 40, 56, 3), dtype=np.uint8)) for i in range(6)]
    write_frame_folders(root, episodes)
    return root


def _losses(run):
    by_step = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        by_step[record["step"]] = record["loss"]  # a resumed run re-logs steps after its checkpoint
    return by_step


def _train(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "liv", "train", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


SCHEDULE = ["--lr-schedule", "cosine", "--warmup-steps", "3"]  # a resumed run must continue the schedule too


def test_killed_and_resumed_run_equals_an_uninterrupted_one(data, tmp_path):
    steps = 12
    whole = _train("--data", data, "--out", tmp_path / "whole", "--steps", steps, "--save-every", 3, *COMMON,
                   *SCHEDULE)
    assert whole.wait(timeout=300) == 0, whole.stdout.read()

    run = tmp_path / "killed"
    proc = _train("--data", data, "--out", run, "--steps", steps, "--save-every", 3, *COMMON, *SCHEDULE)
    deadline = time.time() + 300
    while not (run / "checkpoints" / "step_00000006").exists():
        assert proc.poll() is None, "run ended before it could be killed:\n" + proc.stdout.read()
        assert time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = max(_losses(run))
    assert done < steps, "the kill came too late to test anything"

    resumed = _train("--data", data, "--out", run, "--steps", steps, "--save-every", 3, "--resume", *COMMON,
                     *SCHEDULE)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resumed from" in out
    expected, got = _losses(tmp_path / "whole"), _losses(run)
    assert sorted(got) == list(range(1, steps + 1))
    for step in range(1, steps + 1):
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the lr logged after step s is the one step s - 1 used: 1e-3 * s / 3 in the warm-up, then a cosine
    assert [r["lr"] for r in logged if r["step"] <= 3] == pytest.approx([1e-3 / 3, 2e-3 / 3, 1e-3])
    assert logged[-1]["lr"] == pytest.approx(1e-3 * 0.5 * (1 + np.cos(np.pi * 8 / 9)))
    a, b = liv.load(tmp_path / "whole" / "model"), liv.load(run / "model")
    for (name, x), y in zip(a.clip.state_dict().items(), b.clip.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6), name


def test_two_process_torchrun_equals_one_process(data, tmp_path):
    """Same global batch, BN on running statistics (CPU has no SyncBatchNorm): same losses and weights.

    Adam's first steps move each weight by about lr * sign(grad); where a gradient is rounding noise, the
    two runs (different summation orders) may move it in opposite directions. Measured: losses agree to
    ~4e-6 of 6.5 at step 1 (same weights; channels-last convolutions on 1 vs 2 threads round differently)
    and to ~1e-5 after; such elements are a tiny fraction.
    """
    lr, steps = 1e-4, 2
    args = ["--data", data, "--steps", steps, "--save-every", 0, "--batchnorm", "frozen", "--num-negatives", 2,
            "--vip-text-weight", 1.0, *COMMON, "--lr", lr]
    single = _train("--out", tmp_path / "one", *args)
    assert single.wait(timeout=300) == 0, single.stdout.read()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "liv", "train", "--out", tmp_path / "two", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "parameters identical on all 2 processes" in proc.stdout
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(one) == sorted(two) == [1, 2]
    assert two[1] == pytest.approx(one[1], rel=3e-6)
    assert two[2] == pytest.approx(one[2], abs=1e-4)
    a, b = liv.load(tmp_path / "one" / "model"), liv.load(tmp_path / "two" / "model")
    differing, total = 0, 0
    for (name, x), y in zip(a.clip.state_dict().items(), b.clip.state_dict().values()):
        if x.is_floating_point():
            assert (x - y).abs().max() <= 2 * lr * steps + 1e-7, name
            differing, total = differing + int(((x - y).abs() > 1e-6).sum()), total + x.numel()
    assert differing < 1e-3 * total


def test_bad_data_stops_before_the_first_step(tmp_path):
    root = tmp_path / "bad"
    write_frame_folders(root, [("open the drawer", np.zeros((6, 20, 20, 3), np.uint8)),
                               ("close the drawer", np.zeros((6, 20, 20, 3), np.uint8))])
    next((root / "episode_000001").glob("3.*")).unlink()
    proc = subprocess.run([sys.executable, "-m", "liv", "train", "--data", root, "--out", tmp_path / "run",
                           "--steps", "2", *COMMON], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3
    assert "episode_000001" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_diverging_run_stops_and_sets_aside_the_bad_checkpoint(data, tmp_path):
    run = tmp_path / "nan"
    proc = subprocess.run([sys.executable, "-m", "liv", "train", "--data", data, "--out", run, "--steps", "5",
                           "--save-every", "1", *COMMON, "--lr", "1e30", "--no-check-data"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "loss is not finite" in proc.stderr and "Traceback" not in proc.stderr
    # lr 1e30 breaks the weights in the first update: the step-1 checkpoint holds them and is set aside.
    assert (run / "checkpoints" / "step_00000001.diverged").is_dir()
    from liv.training.checkpointing import list_checkpoints

    assert list_checkpoints(run) == []


@pytest.mark.slow  # compiles both towers: about two minutes on 2 CPU cores
def test_a_compiled_checkpointed_run_follows_the_eager_one(data, tmp_path):
    runs = {}
    for name, extra in {"eager": [], "compiled": ["--compile", "--grad-checkpointing"]}.items():
        proc = _train("--data", data, "--out", tmp_path / name, "--steps", 3, *COMMON, *extra)
        assert proc.wait(timeout=900) == 0, proc.stdout.read()
        runs[name] = _losses(tmp_path / name)
    assert runs["eager"].keys() == runs["compiled"].keys() == {1, 2, 3}
    for step, loss in runs["eager"].items():
        assert runs["compiled"][step] == pytest.approx(loss, rel=1e-4), step
    # the final model is a plain liv model with the usual parameter names
    compiled, eager = (liv.load(tmp_path / name / "model").clip.state_dict() for name in ("compiled", "eager"))
    assert list(compiled) == list(eager)
