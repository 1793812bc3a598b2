"""Video files: round trips per container, random access, segments, truncation, pickling, per-process containers."""

import csv
import multiprocessing
import pickle
import sys

import numpy as np
import pytest

from liv.data import DataError
from liv.data import video_files
from liv.data.frame_folders import read_frame_folders, write_frame_folders
from liv.data.video_files import VideoFrames, read_video_manifest
from liv.data.video_write import write_video, write_video_manifest
from episode_frames import EPISODES, make_frames  # noqa: E402


def identify(decoded: np.ndarray, originals: np.ndarray) -> list[int]:
    """Index of the original frame nearest to each decoded frame (robust to lossy compression)."""
    dist = np.abs(decoded[:, None].astype(np.int16) - originals[None].astype(np.int16)).mean(axis=(2, 3, 4))
    return dist.argmin(axis=1).tolist()


@pytest.mark.parametrize("container", ["mp4", "webm", "avi", "mkv"])
def test_lossy_round_trip_keeps_order_and_pixels_close(tmp_path, container):
    ds = read_video_manifest(write_video_manifest(tmp_path, EPISODES, container=container))
    assert ds.format == "video" and [e.text for e in ds] == [t for t, _ in EPISODES]
    for episode, (_, frames) in zip(ds, EPISODES):
        assert len(episode) == len(frames)
        out = episode.all_frames()
        assert out.shape == frames.shape and out.dtype == np.uint8
        assert identify(out, frames) == list(range(len(frames)))
        # Measured on these frames: mean 2.2-2.4, max 24-28 (chroma subsampling at the block edges).
        assert np.abs(out.astype(int) - frames).mean() < 4


@pytest.mark.parametrize("container", ["mp4", "avi", "mkv"])
def test_lossless_round_trip_is_exact(tmp_path, container):
    ds = read_video_manifest(write_video_manifest(tmp_path, EPISODES, container=container, lossless=True))
    for episode, (_, frames) in zip(ds, EPISODES):
        assert np.array_equal(episode.all_frames(), frames)


@pytest.mark.parametrize("container", ["mp4", "mkv", "webm", "avi"])
def test_random_access_matches_sequential_decode(tmp_path, container):
    frames = make_frames(60, 5)
    path = write_video(tmp_path / f"long.{container}", frames, gop=8)
    source = VideoFrames(path)
    sequential = source.read(range(60))
    rng = np.random.default_rng(0)
    for _ in range(25):
        order = rng.integers(0, 60, size=5).tolist()
        assert np.array_equal(source.read(order), sequential[order])
    order = [59, 0, 31, 31, 2, 58, 0]
    assert np.array_equal(source.read(order), sequential[order])
    assert identify(sequential, frames) == list(range(60))


def test_random_access_decodes_only_from_the_nearest_keyframe(tmp_path, monkeypatch):
    path = write_video(tmp_path / "long.mp4", make_frames(60, 5), lossless=True, gop=8)
    source = VideoFrames(path)
    keyframes = source.info().keyframes
    decoded = []
    original = VideoFrames._frames_from

    def counting(self, *args):
        for index, frame in original(self, *args):
            decoded.append(index)
            yield index, frame

    monkeypatch.setattr(VideoFrames, "_frames_from", counting)
    source.read([50])
    assert decoded == list(range(max(k for k in keyframes if k <= 50), 51))
    decoded.clear()
    source.read([53, 51, 52])  # close and sorted: one forward pass
    assert decoded == list(range(max(k for k in keyframes if k <= 51), 54))


def test_segments_of_one_video(tmp_path):
    frames = make_frames(30, 6)
    write_video(tmp_path / "long.avi", frames, lossless=True)
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text", "start_frame", "end_frame"], ["long.avi", "first", 0, 10],
                                 ["long.avi", "second", 10, 25], [str(tmp_path / "long.avi"), "rest", 25, ""]])
    ds = read_video_manifest(tmp_path)
    assert [len(e) for e in ds] == [10, 15, 5] and [e.text for e in ds] == ["first", "second", "rest"]
    assert np.array_equal(ds[1].all_frames(), frames[10:25]) and np.array_equal(ds[2].all_frames(), frames[25:])
    assert np.array_equal(ds[1].read([14, 0, 7, 0]), frames[[24, 10, 17, 10]])
    assert "[frames 10:25]" in ds[1].frames.describe()


def test_formats_agree_on_the_same_episodes(tmp_path):
    folders = read_frame_folders(write_frame_folders(tmp_path / "png", EPISODES))
    mp4 = read_video_manifest(write_video_manifest(tmp_path / "mp4", EPISODES, container="mp4", lossless=True))
    avi = read_video_manifest(write_video_manifest(tmp_path / "avi", EPISODES, container="avi", lossless=True))
    webm = read_video_manifest(write_video_manifest(tmp_path / "webm", EPISODES, container="webm", lossless=True))
    for a, b, c, d in zip(folders, mp4, avi, webm):
        idx = [len(a) - 1, 0, 2, 2]
        assert np.array_equal(a.read(idx), b.read(idx)) and np.array_equal(a.read(idx), c.read(idx))
        assert np.abs(a.read(idx).astype(int) - d.read(idx)).max() <= 3  # VP9 lossless is exact in YUV only


def test_pickled_episode_reads_and_containers_reopen_per_process(tmp_path, monkeypatch):
    ds = read_video_manifest(write_video_manifest(tmp_path, EPISODES, lossless=True))
    ds[2].read([3])  # opens the container in this process
    clone = pickle.loads(pickle.dumps(ds[2]))
    assert np.array_equal(clone.read([11, 4]), EPISODES[2][1][[11, 4]])
    inherited = video_files._FILES._open
    monkeypatch.setattr(video_files._FILES, "_pid", -1)  # as if this were a forked DataLoader worker
    assert np.array_equal(clone.read([5]), EPISODES[2][1][[5]])
    assert video_files._FILES._open is not inherited and len(video_files._FILES) == 1  # its own, newly opened


def test_open_container_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(video_files._FILES, "limit", 2)
    ds = read_video_manifest(write_video_manifest(tmp_path, EPISODES, lossless=True))
    for _ in range(2):
        for episode, (_, frames) in zip(ds, EPISODES):
            assert np.array_equal(episode.read([1]), frames[[1]])
    assert len(video_files._FILES) == 2


def test_odd_frame_size_needs_another_pixel_format(tmp_path):
    with pytest.raises(ValueError, match="needs even height and width, got 33x48"):
        write_video(tmp_path / "odd.mp4", np.zeros((3, 33, 48, 3), np.uint8))
    path = write_video(tmp_path / "odd.mp4", np.zeros((3, 33, 48, 3), np.uint8), pix_fmt="yuv444p")
    assert VideoFrames(path).read([2]).shape == (1, 33, 48, 3)


# ---------------------------------------------------------------------------------------- bad input

def test_mp4_cut_in_half_is_named(tmp_path):
    path = write_video(tmp_path / "v.mp4", make_frames(12, 0))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    source = VideoFrames(path)
    with pytest.raises(DataError, match=r"v\.mp4: cannot open video"):
        source.read([0])
    [problem] = source.validate()
    assert "v.mp4: cannot open video" in problem


def test_webm_cut_in_half_is_reported_as_truncated(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (20, 32, 48, 3), dtype=np.uint8)  # noise: even-sized packets
    path = write_video(tmp_path / "v.webm", frames)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    source = VideoFrames(path)
    assert 0 < len(source) < 20
    [problem] = source.validate()
    assert problem.startswith(f"warning: {path}: the header says 20 frames but ") and "a truncated file" in problem
    assert np.array_equal(source.read([len(source) - 1]), source.read(range(len(source)))[-1:])  # what is there reads


def test_segment_beyond_the_end_of_the_video(tmp_path):
    write_video(tmp_path / "v.mp4", make_frames(8, 0))
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text", "start_frame", "end_frame"], ["v.mp4", "t", 4, 12]])
    episode = read_video_manifest(tmp_path)[0]
    assert len(episode) == 8
    assert episode.frames.validate() == [f"{tmp_path / 'v.mp4'} [frames 4:12]: end_frame 12 is beyond the video's 8 frames"]
    with pytest.raises(DataError, match=r"v\.mp4 \(episode .*manifest\.csv line 2\): frame 8: the video ends after frame 7"):
        episode.read([4])
    assert len(episode.frames.validate(full=True)) == 1  # frames past the end are not decoded again


def test_missing_video_file(tmp_path):
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text"], ["nowhere.mp4", "t"]])
    episode = read_video_manifest(tmp_path)[0]
    with pytest.raises(DataError, match=r"nowhere\.mp4: cannot open video"):
        len(episode)


@pytest.mark.parametrize("row, message", [
    (["v.mp4", "t", "5", "5"], "end_frame 5 must be greater than start_frame 5"),
    (["v.mp4", "t", "x", ""], "start_frame 'x' is not an integer"),
    (["", "t", "", ""], "path is empty"),
])
def test_bad_rows_name_the_line(tmp_path, row, message):
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "text", "start_frame", "end_frame"], ["v.mp4", "ok", "", ""],
                                 ["v.mp4", "ok", "1", "3"], row])
    with pytest.raises(DataError, match="manifest.csv line 4: " + message):
        read_video_manifest(tmp_path)
    errors = []
    assert len(read_video_manifest(tmp_path, errors=errors)) == 2 and len(errors) == 1


def test_missing_path_column(tmp_path):
    (tmp_path / "manifest.csv").write_text("file,text\nv.mp4,t\n")
    with pytest.raises(DataError, match=r"manifest\.csv: missing required column\(s\) path"):
        read_video_manifest(tmp_path)


def _read_in_child(episode, queue):
    queue.put(episode.read([7, 0]))


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_forked_worker_reopens_the_container(tmp_path):
    ds = read_video_manifest(write_video_manifest(tmp_path, EPISODES, lossless=True))
    ds[1].read([2])  # the parent holds the container open, as before DataLoader workers fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(ds[1], queue))
    child.start()
    frames = queue.get(timeout=30)
    child.join(timeout=30)
    assert child.exitcode == 0 and np.array_equal(frames, EPISODES[1][1][[7, 0]])
    assert np.array_equal(ds[1].read([3]), EPISODES[1][1][[3]])  # the parent's container still works
