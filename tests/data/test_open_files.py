"""Handles kept open between reads always read the file that is on disk now: rewritten in place, replaced,
or restored with its old modification time (cp -p, rsync), a file is opened again, never read stale."""

import os
import shutil

import numpy as np
import pytest

from liv.data.open_files import OpenFiles, file_identity
from liv.data.video_files import VideoFrames
from liv.data.video_write import write_video


def grey_video(path, first: int, n: int = 6):
    """Frames of grey levels 8 + 6k for k = first .. first + n - 1, lossless."""
    frames = np.stack([np.full((16, 16, 3), 8 + 6 * k, np.uint8) for k in range(first, first + n)])
    return write_video(path, frames, lossless=True)


def levels(frames: np.ndarray) -> list[int]:
    return [int(round((f.mean() - 8) / 6)) for f in frames]


def test_a_handle_is_reopened_whenever_the_file_changes(tmp_path):
    table, opened = OpenFiles(limit=4), []

    def opener(path):
        opened.append(path)
        return open(path, "rb")

    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"AAAA")
    b.write_bytes(b"BBBB")
    os.utime(b, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns))  # same size, same mtime: only content differs
    target = str(tmp_path / "f.bin")
    shutil.copy2(a, target)
    with table.lock:
        assert table.get("k", target, opener).read() == b"AAAA"
        assert table.get("k", target, opener) is table.get("k", target, opener) and len(opened) == 1  # reused
        shutil.copy2(b, target)  # in place, modification time carried over
        handle = table.get("k", target, opener)
        assert handle.read() == b"BBBB" and len(opened) == 2
        os.replace(shutil.copy2(a, tmp_path / "tmp.bin"), target)  # rsync's way: a temporary file renamed
        assert table.get("k", target, opener).read() == b"AAAA" and len(opened) == 3
    assert handle.closed  # the stale handle was closed, not leaked


def test_identity_tells_apart_what_size_and_mtime_do_not(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"1234")
    before = file_identity(str(path))
    stat = path.stat()
    path.write_bytes(b"5678")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = file_identity(str(path))
    assert before[1:3] == after[1:3] and before != after  # same size and mtime; the status-change time moved


def test_a_video_restored_with_its_old_mtime_reads_as_restored(tmp_path):
    a, b = grey_video(tmp_path / "a.mp4", 0), grey_video(tmp_path / "b.mp4", 30)
    path = tmp_path / "v.mp4"
    shutil.copy2(a, path)
    assert levels(VideoFrames(path).read([0, 5])) == [0, 5]
    shutil.copy2(b, path)
    assert levels(VideoFrames(path).read([0, 5])) == [30, 35]
    shutil.copy2(a, path)  # back to a, with a's modification time: the index of a applies again, so must a's frames
    assert levels(VideoFrames(path).read([0, 5])) == [0, 5]


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_a_lerobot_dataset_written_again_reads_its_new_frames(tmp_path, version):
    pytest.importorskip("pyarrow")
    from liv.data.lerobot import read_lerobot, write_lerobot

    def episodes(first):
        return [{"frames": np.stack([np.full((16, 16, 3), 8 + 6 * k, np.uint8) for k in range(first, first + 8)]),
                 "task": "t"}]

    root = tmp_path / "ds"
    write_lerobot(root, episodes(0), fps=10, version=version, lossless=True)
    assert levels(read_lerobot(root)[0].read([0, 7])) == [0, 7]
    shutil.rmtree(root)
    write_lerobot(root, episodes(20), fps=10, version=version, lossless=True)
    assert levels(read_lerobot(root)[0].read([0, 7])) == [20, 27]
