"""The reference's sampler: bounds, distributions, the last-5% rule, degenerate samples, reproducibility."""

from collections import Counter

import numpy as np
import pytest

from liv.data.sampling import min_length, sample_indices, unique_frames

DRAWS = 20_000


def _draws(length, mode, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return np.stack([sample_indices(length, rng, mode, **kw) for _ in range(DRAWS)])


def _uniform(values, support):
    counts = Counter(values.tolist())
    assert set(counts) == set(support), "every value of the support occurs and nothing else"
    expected = len(values) / len(support)
    # 5 sigma of a binomial count: fails for a wrong distribution, not by chance
    assert all(abs(counts[v] - expected) < 5 * np.sqrt(expected) for v in support)


def test_episode_mode_follows_the_reference():
    t = 12
    s = _draws(t, "episode")
    assert (s[:, 0] == 0).all() and (s[:, 1] == t - 1).all() and (s[:, 4] == t - 1).all()
    assert (s[:, 3] == s[:, 2] + 1).all()
    _uniform(s[:, 2], range(0, t - 1))


def test_segment_mode_bounds_and_the_last_five_percent_rule():
    t = 100
    s = _draws(t, "segment")
    start, end, k, k1, text_goal = s.T
    _uniform(start, range(0, t - 2))
    assert (end >= start + 1).all() and (end <= t - 1).all()
    assert (k >= start).all() and (k <= end - 1).all() and (k1 == k + 1).all()
    _uniform(text_goal, range(int(0.95 * t) - 1, t))  # [94, 99]: the last 5% of the episode


def test_segment_mode_conditional_distributions():
    """end is uniform on [start+1, T-1] given start, and k uniform on [start, end-1] given both."""
    t = 6
    s = _draws(t, "segment")
    for start in range(t - 2):
        given = s[s[:, 0] == start]
        _uniform(given[:, 1], range(start + 1, t))
        for end in range(start + 1, t):
            _uniform(given[given[:, 1] == end][:, 2], range(start, end))


def test_segment_text_goal_window_follows_alpha():
    s = _draws(40, "segment", alpha=0.5)
    assert s[:, 4].min() == 19 and s[:, 4].max() == 39


def test_degenerate_samples_use_the_goal_frame_everywhere():
    s = _draws(10, "episode", degenerate_prob=0.3)
    degenerate = (s == 9).all(axis=1)
    assert abs(degenerate.mean() - 0.3) < 0.02
    # a normal sample is all-goal only if it has k + 1 = 9 and o_0 = 9, impossible for T = 10


def test_same_seed_same_samples_different_seed_different():
    a, b, c = _draws(30, "segment", seed=1), _draws(30, "segment", seed=1), _draws(30, "segment", seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_shortest_episodes():
    assert min_length("episode") == 2 and min_length("segment") == 3
    assert sample_indices(2, np.random.default_rng(0), "episode").tolist() == [0, 1, 0, 1, 1]
    s = _draws(3, "segment")
    assert set(map(tuple, s[:, :4].tolist())) <= {(0, 1, 0, 1), (0, 2, 0, 1), (0, 2, 1, 2), (1, 2, 1, 2)}
    with pytest.raises(ValueError, match="too short"):
        sample_indices(2, np.random.default_rng(0), "segment")
    with pytest.raises(ValueError, match="mode"):
        sample_indices(5, np.random.default_rng(0), "whole")


def test_unique_frames_maps_every_role():
    indices = np.array([0, 9, 4, 5, 9])
    distinct, inverse = unique_frames(indices)
    assert distinct.tolist() == [0, 4, 5, 9] and np.array_equal(distinct[inverse], indices)
