"""Noticing a non-finite loss without reading the device every step (liv.training.divergence)."""

import torch

from liv.training.divergence import NonFiniteWatch, must_read_back


def test_the_watch_remembers_the_first_bad_step_and_reads_only_when_asked():
    watch = NonFiniteWatch(torch.device("cpu"), every_step=False)
    losses = [1.0, 2.0, float("nan"), float("inf"), 3.0]
    seen = []
    for step, loss in enumerate(losses):
        watch.update(torch.tensor(loss), step)
        seen.append(watch.first_bad(read=False))
    assert seen == [None] * 5  # never read back between read-back points
    assert watch.first_bad(read=True) == 2  # the first, not the latest, non-finite step


def test_on_cpu_the_watch_reads_every_step():
    watch = NonFiniteWatch(torch.device("cpu"))
    watch.update(torch.tensor(0.5), 0)
    assert watch.first_bad(read=False) is None
    watch.update(torch.tensor(float("-inf")), 1)
    assert watch.first_bad(read=False) == 1


def test_read_back_points_are_log_save_eval_and_the_last_step():
    points = [s for s in range(12) if must_read_back(s, steps=12, log_every=5, save_every=0, eval_every=0)]
    assert points == [4, 9, 11]
    points = [s for s in range(12) if must_read_back(s, steps=12, log_every=100, save_every=3, eval_every=4)]
    assert points == [2, 3, 5, 7, 8, 11]


def test_a_run_that_reads_back_only_at_log_and_save_points_stops_before_saving_bad_weights(tmp_path, monkeypatch):
    """The CUDA behaviour (no read-back every step), forced on CPU: lr 1e30 breaks the weights in the
    first update; the loop notices at its next read-back point, before any checkpoint after it."""
    import numpy as np
    import pytest

    import liv.train
    from liv.data.frame_folders import write_frame_folders
    from liv.training.checkpointing import list_checkpoints
    from liv.training.config import build_config

    class CudaLikeWatch(NonFiniteWatch):
        def __init__(self, device):
            super().__init__(device, every_step=False)

    monkeypatch.setattr(liv.train, "NonFiniteWatch", CudaLikeWatch)
    rng = np.random.default_rng(0)
    write_frame_folders(tmp_path / "data", [(t, rng.integers(0, 256, (8, 40, 56, 3), dtype=np.uint8))
                                            for t in ("open the drawer", "close the drawer") * 2])
    config = build_config({"data": tmp_path / "data", "out": tmp_path / "run", "init": "clip-tiny", "steps": 8,
                           "batch_size": 4, "lr": 1e30, "save_every": 3, "log_every": 100, "num_workers": 0,
                           "progress": False, "check_data": False, "device": "cpu"})
    with pytest.raises(liv.train.TrainingError) as raised:
        liv.train.train(config)
    message = str(raised.value)
    # step 1's loss (after the first update) is the first non-finite one; read back at step 2, before
    # the save of step 3
    assert message.startswith("step 1: loss is not finite (noticed at step 2:"), message
    assert list_checkpoints(tmp_path / "run") == [] and not (tmp_path / "run" / "model").exists()
