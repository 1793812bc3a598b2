"""A seeded run repeats exactly on one machine: two fresh `liv train` processes with the same settings,
loader workers included, log the same losses bit for bit and end with the same weights.

Across machines PyTorch does not promise this: the CPU kernels follow the processor's vector
instructions (measured 2026-11-29: forcing ATEN_CPU_CAPABILITY=avx2 on an AVX-512 machine moved a
clip-tiny loss in its 6th digit by the 2nd step, and such differences grow over a run), which is
what README.md's "Reproducibility" says.
"""

import json
import subprocess
import sys

import numpy as np
import torch

import liv
from liv.data.frame_folders import write_frame_folders


def _run(data, out):
    args = ["--data", data, "--out", out, "--init", "clip-tiny", "--steps", "6", "--batch-size", "4",
            "--log-every", "1", "--num-workers", "2", "--lr", "1e-3", "--no-progress", "--seed", "5"]
    done = subprocess.run([sys.executable, "-m", "liv", "train", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_seeded_run_repeats_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    texts = ["open the drawer", "close the drawer", "turn the faucet left"]
    write_frame_folders(tmp_path / "data", [(texts[i % 3], rng.integers(0, 256, (6 + i, 40, 56, 3), dtype=np.uint8))
                                            for i in range(6)])
    first, second = _run(tmp_path / "data", tmp_path / "a"), _run(tmp_path / "data", tmp_path / "b")
    assert len(first) == 6 and first == second  # exact equality, not a tolerance
    a, b = (liv.load(tmp_path / run / "model").clip.state_dict() for run in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
