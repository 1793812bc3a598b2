"""Reading ahead in a background thread (liv.data.prefetch.read_ahead)."""

import threading
import time

import pytest

from liv.data.prefetch import read_ahead


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_results_come_in_order(depth):
    assert list(read_ahead(range(10), lambda i: i * i, depth)) == [i * i for i in range(10)]


def test_reads_run_ahead_of_the_consumer_in_another_thread():
    started, threads = [], set()

    def read(i):
        started.append(i)
        threads.add(threading.get_ident())
        return i

    results = read_ahead(range(5), read, depth=2)
    assert next(results) == 0
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:  # item 0 taken, 1 and 2 queued
        time.sleep(0.01)
    assert started[:3] == [0, 1, 2]
    assert list(results) == [1, 2, 3, 4]
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_an_error_is_raised_at_its_item_and_nothing_is_lost_before_it():
    def read(i):
        if i == 3:
            raise ValueError("frame 3 is broken")
        return i

    seen = []
    with pytest.raises(ValueError, match="frame 3 is broken"):
        for value in read_ahead(range(6), read):
            seen.append(value)
    assert seen == [0, 1, 2]


def test_leaving_early_stops_the_thread():
    reads = []
    for value in read_ahead(range(1000), lambda i: reads.append(i) or i, depth=1):
        if value == 2:
            break
    count = len(reads)
    time.sleep(0.1)
    assert len(reads) == count <= 5  # no reading after the consumer left
    assert not any(t.name == "liv-read-ahead" for t in threading.enumerate())


def test_negative_depth_is_refused():
    with pytest.raises(ValueError, match="depth"):
        list(read_ahead([1], lambda i: i, -1))


def test_scoring_a_video_with_read_ahead_gives_the_same_embeddings(tmp_path):
    import numpy as np
    import torch

    import liv
    from liv.data.video_files import read_video_manifest
    from liv.data.video_write import write_video_manifest
    from liv.eval.commands import embed_episode

    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (300, 1, 1, 3), dtype=np.uint8), 32, axis=1).repeat(32, axis=2)
    episode = read_video_manifest(write_video_manifest(tmp_path, [("press the button", frames)], "mp4"))[0]
    model = liv.create("clip-tiny")
    plain = embed_episode(model, episode, batch_size=64, read_ahead_chunks=0)
    ahead = embed_episode(model, episode, batch_size=64, read_ahead_chunks=2)  # chunks of 256: 2 chunks
    assert plain.shape == (300, model.embed_dim)
    assert torch.equal(plain, ahead)


def test_read_ahead_only_for_a_model_on_an_accelerator():
    import torch

    from liv.data.prefetch import read_ahead_depth

    assert [read_ahead_depth(d) for d in (None, "cpu", torch.device("cpu"), "cuda", "cuda:1")] == [0, 0, 0, 1, 1]
