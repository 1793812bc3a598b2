"""What `liv train` prints: header lines whole and before the progress bar, and a warning when the batch
must repeat episodes."""

import math
import re
import subprocess
import sys

import numpy as np

from liv.data.frame_folders import write_frame_folders
from liv.training.batches import few_episodes_warning


def test_few_episodes_warning_names_the_episodes_the_batch_and_a_batch_size_that_fits():
    assert few_episodes_warning(6, 64) == (
        "6 episodes for a batch of 64: each batch draws every episode about 10.7 times, so InfoNCE counts an "
        f"episode's copies as negatives of each other and stays above about ln(10.7) = {math.log(64 / 6):.2f}; "
        "--batch-size 6 suits this data")
    assert few_episodes_warning(6, 64, infonce=False) == (
        "6 episodes for a batch of 64: each batch draws every episode about 10.7 times; --batch-size 6 suits "
        "this data")
    assert few_episodes_warning(7, 64, world_size=4).endswith("--batch-size 4 suits this data")  # 4 processes
    assert few_episodes_warning(1, 8).startswith("1 episode for a batch of 8") and "--batch-size 2 " in \
        few_episodes_warning(1, 8)  # a batch has at least 2 samples
    assert few_episodes_warning(64, 64) is None and few_episodes_warning(100, 64) is None
    assert few_episodes_warning(1, 2) is None  # no smaller batch to suggest
    assert few_episodes_warning(3, 4, world_size=4) is None


def test_header_lines_are_whole_and_come_before_the_progress_bar(tmp_path):
    rng = np.random.default_rng(0)
    write_frame_folders(tmp_path / "data", [(t, rng.integers(0, 256, (6, 24, 32, 3), dtype=np.uint8))
                                            for t in ("open the drawer", "close the drawer", "turn left") * 2])
    # stdout and stderr (the bar's) into one pipe, as a terminal shows them; the bar is on (no --no-progress)
    done = subprocess.run([sys.executable, "-m", "liv", "train", "--data", str(tmp_path / "data"), "--out",
                           str(tmp_path / "run"), "--init", "clip-tiny", "--steps", "2", "--batch-size", "8",
                           "--num-workers", "0", "--log-every", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out
    lines = re.split(r"[\r\n]", out)
    header = "liv train: 6 episodes, 8.1M parameters, objective liv, 1 process(es) on cpu"
    warning = ("liv train: warning: 6 episodes for a batch of 8: each batch draws every episode about 1.33 times, "
               "so InfoNCE counts an episode's copies as negatives of each other and stays above about "
               "ln(1.33) = 0.29; --batch-size 6 suits this data")
    assert header in lines and warning in lines, out
    bar = out.index("%|")
    assert out.index(header) < out.index(warning) < bar, out
    assert f"liv train: done at step 2; model in {tmp_path / 'run' / 'model'}" in lines
    assert re.search(r"liv train: 100%\|[^\r\n]*\| 2/2 ", out)
