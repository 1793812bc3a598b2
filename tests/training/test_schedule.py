"""The learning-rate schedule is a pure function of the step (so resume continues it exactly)."""

import math

import pytest

from liv.training.config import build_config
from liv.training.speed import learning_rate


def test_constant_and_warmup():
    assert [learning_rate(s, 0.1, 10) for s in range(10)] == [0.1] * 10
    assert [learning_rate(s, 0.1, 10, warmup_steps=4) for s in range(6)] == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_cosine_starts_at_lr_after_warmup_and_decays_monotonically():
    lrs = [learning_rate(s, 1.0, 12, "cosine", warmup_steps=2) for s in range(12)]
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert lrs[2:] == sorted(lrs[2:], reverse=True) and lrs[-1] > 0
    # half a cosine period over the 10 post-warm-up steps: step 7 is the midpoint
    assert lrs[7] == pytest.approx(0.5)
    assert lrs[11] == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 10)))


def test_bad_schedule_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate(0, 1.0, 10, "linear")
    with pytest.raises(ValueError, match="warmup_steps"):
        build_config({"data": tmp_path, "out": tmp_path, "steps": 10, "warmup_steps": 10})
