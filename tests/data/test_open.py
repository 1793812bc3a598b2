"""open_dataset: format detection, explicit formats, and the errors when nothing matches."""

import sys
import types

import numpy as np
import pytest
from PIL import Image

from liv.data import DataError, EpisodeDataset
from liv.data.frame_folders import write_frame_folders
from liv.data.open import open_dataset
from liv.data.video_write import write_video, write_video_manifest

FRAMES = np.random.default_rng(0).integers(0, 256, (7, 32, 48, 3), dtype=np.uint8)
EPISODES = [("open the drawer", FRAMES[:4]), ("close the drawer", FRAMES)]


def test_frame_folder_manifest_by_folder_or_file(tmp_path):
    manifest = write_frame_folders(tmp_path, EPISODES)
    for path in (tmp_path, manifest, str(manifest)):
        ds = open_dataset(path)
        assert ds.format == "frames" and [len(e) for e in ds] == [4, 7]
    assert np.array_equal(open_dataset(tmp_path, format="frames")[1].all_frames(), FRAMES)


def test_video_manifest(tmp_path):
    write_video_manifest(tmp_path, EPISODES, lossless=True)
    ds = open_dataset(tmp_path)
    assert ds.format == "video" and ds.texts == ["open the drawer", "close the drawer"]
    assert np.array_equal(ds[1].read([6, 0]), FRAMES[[6, 0]])
    assert open_dataset(tmp_path / "manifest.csv", format="video").format == "video"


def test_single_video_file_needs_text(tmp_path):
    path = write_video(tmp_path / "clip.mkv", FRAMES, lossless=True)
    ds = open_dataset(path, text="wipe the table")
    assert len(ds) == 1 and ds[0].text == "wipe the table" and np.array_equal(ds[0].all_frames(), FRAMES)
    with pytest.raises(DataError, match=r"clip\.mkv: this is a single video file: give its annotation with text="):
        open_dataset(path)


def test_folder_of_images_needs_text(tmp_path):
    for i, frame in enumerate(FRAMES):
        Image.fromarray(frame).save(tmp_path / f"{i:03d}.jpg", quality=100)
    ds = open_dataset(tmp_path, text="stack cups")
    assert ds.format == "frames" and len(ds[0]) == 7 and ds[0].text == "stack cups"
    with pytest.raises(DataError, match="this is a folder of images: give its annotation with text="):
        open_dataset(tmp_path)


def test_lerobot_reader_unavailable(tmp_path, monkeypatch):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "liv.data.lerobot", None)  # as if the module did not exist
    with pytest.raises(DataError, match="LeRobot reader .* is unavailable"):
        open_dataset(tmp_path)


def test_lerobot_reader_is_called_with_the_camera(tmp_path, monkeypatch):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{}")
    calls = []
    fake = types.ModuleType("liv.data.lerobot")
    fake.read_lerobot = lambda root, camera=None: calls.append((root, camera)) or EpisodeDataset([], str(root), "lerobot")
    monkeypatch.setitem(sys.modules, "liv.data.lerobot", fake)
    assert open_dataset(tmp_path, camera="observation.images.top").format == "lerobot"
    assert open_dataset(tmp_path, format="lerobot").format == "lerobot"
    assert calls == [(tmp_path, "observation.images.top"), (tmp_path, None)]


def test_nothing_matches_lists_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError) as e:
        open_dataset(tmp_path)
    message = str(e.value)
    assert str(tmp_path) in message and "cannot tell what dataset this is" in message
    for looked_for in ("meta/info.json", "manifest.csv", "directory", "path", ".mp4", ".png"):
        assert looked_for in message
    with pytest.raises(DataError, match="no such file or folder"):
        open_dataset(tmp_path / "missing")


def test_manifest_with_neither_key_column(tmp_path):
    (tmp_path / "manifest.csv").write_text("video,caption\na.mp4,t\n")
    with pytest.raises(DataError, match=r"manifest\.csv: the header has neither 'directory' .* nor 'path'"):
        open_dataset(tmp_path)


def test_options_that_do_not_apply_are_refused(tmp_path):
    write_frame_folders(tmp_path, EPISODES)
    with pytest.raises(DataError, match="camera='top' applies only to LeRobot"):
        open_dataset(tmp_path, camera="top")
    with pytest.raises(DataError, match="text= applies only to a single video file or a folder of images"):
        open_dataset(tmp_path, text="t")
    with pytest.raises(DataError, match="not a LeRobot dataset: meta/info.json not found"):
        open_dataset(tmp_path, format="lerobot")
    with pytest.raises(DataError, match="unknown format 'hdf5'"):
        open_dataset(tmp_path, format="hdf5")


def test_bad_rows_can_be_collected(tmp_path):
    manifest = write_frame_folders(tmp_path, EPISODES)
    manifest.write_text(manifest.read_text().replace(",7,", ",seven,"))
    errors = []
    assert len(open_dataset(tmp_path, errors=errors)) == 1
    assert [str(e) for e in errors] == [f"{manifest} line 3: num_frames 'seven' is not an integer"]
