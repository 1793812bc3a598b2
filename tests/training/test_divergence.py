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
