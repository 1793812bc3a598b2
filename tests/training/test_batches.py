"""Training batches: determinism per step, one decode per distinct frame, shared crops, sharding."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from liv.data.episodes import ArrayFrames, Episode, name_some
from liv.models.preprocess import resize_center_crop
from liv.training.batches import (BatchStream, StreamSpec, augment_frames, make_batch,
                                  random_resized_crop_box)


class CountingFrames(ArrayFrames):
    """ArrayFrames that records how many frames were decoded."""

    reads = 0

    def read(self, indices):
        indices = list(indices)
        CountingFrames.reads += len(indices)
        return super().read(indices)


def _episodes(n=4, length=10, h=40, w=56, cls=ArrayFrames):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, (h, w, 3), dtype=np.uint8)
    eps = []
    for e in range(n):
        # Frame t = base + t + e: a constant offset per frame makes crops comparable across frames.
        frames = np.stack([base + t + 3 * e for t in range(length + e)]).astype(np.uint8)
        eps.append(Episode(cls(frames, f"ep{e}"), f"task {e}", source=f"mem row {e}"))
    return eps


def test_batches_are_a_pure_function_of_seed_and_step():
    eps, spec = _episodes(), StreamSpec(resolution=32)
    a, b = make_batch(eps, spec, 0, 5, range(8)), make_batch(eps, spec, 0, 5, range(8))
    assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["frame_index"], b["frame_index"])
    c = make_batch(eps, spec, 0, 6, range(8))
    assert not torch.equal(a["frame_index"], c["frame_index"])


def test_slots_point_at_the_right_frames_and_distinct_frames_are_decoded_once():
    eps = _episodes(cls=CountingFrames)
    spec = StreamSpec(resolution=32, augment=False)
    CountingFrames.reads = 0
    batch = make_batch(eps, spec, 1, 0, range(6))
    distinct = sum(len(set(row.tolist())) for row in batch["frame_index"])
    assert CountingFrames.reads == distinct == batch["pixels"].shape[0]
    assert distinct < 5 * 6  # goal and text-goal frame coincide in episode mode
    for b in range(6):
        episode = eps[int(batch["episode"][b])]
        assert batch["texts"][b] == episode.text
        for role in range(5):
            frame = episode.read([int(batch["frame_index"][b, role])])
            expected = resize_center_crop(torch.from_numpy(frame).permute(0, 3, 1, 2).float() / 255, 32)
            assert torch.allclose(batch["pixels"][batch["slots"][b, role]], expected[0], atol=1e-6)


def test_all_frames_of_a_sample_share_one_random_crop():
    frames = _episodes(n=1)[0].all_frames()[[0, 4, 9]]
    out = augment_frames(frames, 32, np.random.default_rng(3), (0.2, 0.5))
    # Frames differ by a constant offset (4 and 9 grey levels); the same crop keeps exactly that offset.
    assert torch.allclose(out[1] - out[0], torch.full_like(out[0], 4 / 255), atol=1e-5)
    assert torch.allclose(out[2] - out[0], torch.full_like(out[0], 9 / 255), atol=1e-5)


def test_random_resized_crop_box_stays_inside_and_follows_the_scale():
    rng = np.random.default_rng(0)
    areas = []
    for _ in range(500):
        top, left, h, w = random_resized_crop_box(90, 120, rng, (0.2, 1.0))
        assert 0 <= top and top + h <= 90 and 0 <= left and left + w <= 120 and h > 0 and w > 0
        areas.append(h * w / (90 * 120))
    assert 0.17 < min(areas) < 0.3 and max(areas) > 0.9  # rounding lets the area slip just below 0.2


def test_only_the_objectives_roles_are_drawn():
    batch = make_batch(_episodes(), StreamSpec(resolution=32, slots=(4,)), 0, 0, range(5))
    assert (batch["slots"][:, :4] == -1).all() and batch["pixels"].shape[0] == 5


def test_stream_with_workers_yields_steps_in_order():
    eps, spec = _episodes(), StreamSpec(resolution=32)
    stream = BatchStream(eps, spec, seed=2, global_batch=4, start_step=3, end_step=9)
    got = list(DataLoader(stream, batch_size=None, num_workers=2))
    assert [b["step"] for b in got] == list(range(3, 9))
    assert torch.equal(got[2]["pixels"], make_batch(eps, spec, 2, 5, range(4))["pixels"])


def test_ranks_draw_disjoint_shares_of_the_same_global_batch():
    eps, spec = _episodes(), StreamSpec(resolution=32)
    whole = next(iter(BatchStream(eps, spec, 0, 8, 0, 1)))
    shares = [next(iter(BatchStream(eps, spec, 0, 8, 0, 1, rank=r, world_size=2))) for r in range(2)]
    assert torch.equal(torch.cat([s["frame_index"] for s in shares]), whole["frame_index"])
    assert torch.equal(torch.cat([s["pixels"] for s in shares]), whole["pixels"])


def test_name_some_shows_the_first_names_and_counts_the_rest():
    assert name_some(["a", "b"]) == "a, b"
    assert name_some([f"e{i}" for i in range(8)], shown=3) == "e0, e1, e2 and 5 more"


def test_short_episodes_are_skipped_and_impossible_data_refused():
    eps = _episodes(n=2) + [Episode(ArrayFrames(np.zeros((2, 8, 8, 3), np.uint8)), "short", "mem")]
    stream = BatchStream(eps, StreamSpec(32, mode="segment"), 0, 4, 0, 1)
    assert stream.skipped == 1 and stream.skipped_sources == ["mem"] and stream.episodes == eps[:2]
    assert BatchStream(eps, StreamSpec(32, mode="episode"), 0, 4, 0, 1).skipped == 0
    with pytest.raises(ValueError, match=r"no episode has the 3 frames that sampling mode 'segment' needs: all 1 "
                                         r"are shorter \(mem\)"):
        BatchStream(eps[2:], StreamSpec(32, mode="segment"), 0, 4, 0, 1)
    with pytest.raises(ValueError, match="there are no episodes"):
        BatchStream([], StreamSpec(32), 0, 4, 0, 1)
    with pytest.raises(ValueError, match="divisible"):
        BatchStream(eps, StreamSpec(32), 0, 5, 0, 1, world_size=2)
