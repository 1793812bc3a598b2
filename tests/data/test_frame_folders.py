"""Frame folders (the reference LIV layout): round trips, random access, optional columns, bad input."""

import csv
import pickle

import numpy as np
import pytest
from PIL import Image

from liv.data import DataError
from liv.data.frame_folders import read_frame_folders, read_image_folder, write_frame_folders
from episode_frames import EPISODES, make_frames  # noqa: E402


@pytest.fixture
def dataset_dir(tmp_path):
    write_frame_folders(tmp_path / "ds", EPISODES)
    return tmp_path / "ds"


def write_manifest(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def test_png_round_trip_is_exact(dataset_dir):
    ds = read_frame_folders(dataset_dir / "manifest.csv")
    assert ds.format == "frames" and len(ds) == 3 and ds.num_frames() == 27
    assert [e.text for e in ds] == [t for t, _ in EPISODES]
    for episode, (_, frames) in zip(ds, EPISODES):
        out = episode.all_frames()
        assert out.dtype == np.uint8 and np.array_equal(out, frames)
    assert ds[1].meta == {"index": "1"} and ds[1].source.endswith("manifest.csv line 3")


def test_jpg_round_trip_is_close(tmp_path):
    ds = read_frame_folders(write_frame_folders(tmp_path, EPISODES, image_format="jpg"))
    for episode, (_, frames) in zip(ds, EPISODES):
        diff = np.abs(episode.all_frames().astype(int) - frames)
        assert diff.mean() < 1.0 and diff.max() <= 8  # measured: mean 0.35, max 3 (q95, 4:4:4)


def test_random_access_in_any_order_with_repeats(dataset_dir):
    episode = read_frame_folders(dataset_dir)[2]
    order = [11, 0, 5, 5, 3, 11, 0]
    assert np.array_equal(episode.read(order), EPISODES[2][1][order])
    with pytest.raises(DataError, match="out of range"):
        episode.read([12])


def test_start_frame_and_frame_pattern(tmp_path):
    frames = make_frames(10, 3)
    (tmp_path / "clip").mkdir()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "clip" / f"frame_{i + 100:010d}.png")
    write_manifest(tmp_path / "manifest.csv", ["directory", "num_frames", "text", "start_frame", "frame_pattern"],
                   [["clip", 4, "a", 103, "frame_{:010d}.png"], [str(tmp_path / "clip"), 3, "b", 100, "frame_{:010d}.png"]])
    ds = read_frame_folders(tmp_path)
    assert np.array_equal(ds[0].all_frames(), frames[3:7]) and np.array_equal(ds[1].all_frames(), frames[:3])
    assert ds[0].frames.validate(full=True) == []


def test_other_image_modes_become_rgb(tmp_path):
    (tmp_path / "ep").mkdir()
    Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(tmp_path / "ep" / "0.png")
    Image.fromarray(np.full((8, 8, 4), 200, np.uint8), "RGBA").save(tmp_path / "ep" / "1.png")
    Image.fromarray(np.full((8, 8), 5, np.uint8), "L").convert("P").save(tmp_path / "ep" / "2.png")
    write_manifest(tmp_path / "manifest.csv", ["directory", "num_frames", "text"], [["ep", 3, "t"]])
    out = read_frame_folders(tmp_path)[0].all_frames()
    assert out.shape == (3, 8, 8, 3) and out.dtype == np.uint8
    assert (out[0] == 77).all() and (out[1] == 200).all() and (out[2] == 5).all()


def test_episode_pickles_and_reads_after(dataset_dir):
    episode = read_frame_folders(dataset_dir)[1]
    episode.read([0])
    clone = pickle.loads(pickle.dumps(episode))
    assert clone.text == episode.text and np.array_equal(clone.read([8, 2]), EPISODES[1][1][[8, 2]])


def test_image_folder_sorts_numbers_as_numbers(tmp_path):
    frames = make_frames(12, 4)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"img{i}.png")
    ds = read_image_folder(tmp_path, "wave")
    assert len(ds) == 1 and ds[0].text == "wave" and np.array_equal(ds[0].all_frames(), frames)


# ---------------------------------------------------------------------------------------- bad input

def test_missing_frame_file_is_named(dataset_dir):
    (dataset_dir / "episode_000001" / "4.png").unlink()
    episode = read_frame_folders(dataset_dir)[1]
    with pytest.raises(DataError, match=r"episode_000001.*frame 4: missing file .*4\.png"):
        episode.read([3, 4])
    [problem] = episode.frames.validate(full=False)
    assert "episode_000001" in problem and "1 of 9 frame files missing: 4.png" in problem


def test_corrupt_image_is_named(dataset_dir):
    (dataset_dir / "episode_000000" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    episode = read_frame_folders(dataset_dir)[0]
    with pytest.raises(DataError, match=r"episode_000000/2\.png \(episode .*manifest\.csv line 2\): cannot decode image"):
        episode.read([2])
    assert episode.frames.validate(full=False) == []
    [problem] = episode.frames.validate(full=True)
    assert "episode_000000/2.png: cannot decode image" in problem


def test_truncated_image_is_named(dataset_dir):
    path = dataset_dir / "episode_000000" / "3.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=r"3\.png \(episode .*manifest\.csv line 2\): cannot decode image"):
        read_frame_folders(dataset_dir)[0].read([3])


def test_manifest_count_larger_than_folder(dataset_dir):
    rows = list(csv.reader(open(dataset_dir / "manifest.csv")))
    rows[3][2] = "14"
    write_manifest(dataset_dir / "manifest.csv", rows[0], rows[1:])
    [problem] = read_frame_folders(dataset_dir)[2].frames.validate()
    assert "num_frames=14 but only 12 frames are present; missing 12.png, 13.png" in problem


def test_folder_with_more_frames_than_listed_is_a_warning(dataset_dir):
    rows = list(csv.reader(open(dataset_dir / "manifest.csv")))
    rows[3][2] = "10"
    write_manifest(dataset_dir / "manifest.csv", rows[0], rows[1:])
    [problem] = read_frame_folders(dataset_dir)[2].frames.validate()
    assert problem.startswith("warning: ") and "num_frames=10" in problem and "10.png" in problem


def test_missing_folder(dataset_dir):
    write_manifest(dataset_dir / "manifest.csv", ["directory", "num_frames", "text"], [["nowhere", 3, "t"]])
    assert read_frame_folders(dataset_dir)[0].frames.validate() == [f"{dataset_dir / 'nowhere'}: frame folder does not exist (or cannot be listed)"]


def test_missing_column_names_the_manifest(tmp_path):
    write_manifest(tmp_path / "manifest.csv", ["directory", "text"], [["a", "t"]])
    with pytest.raises(DataError, match=r"manifest\.csv: missing required column\(s\) num_frames"):
        read_frame_folders(tmp_path)


def test_non_integer_num_frames_names_line_4(dataset_dir):
    rows = list(csv.reader(open(dataset_dir / "manifest.csv")))
    rows[3][2] = "twelve"
    write_manifest(dataset_dir / "manifest.csv", rows[0], rows[1:])
    with pytest.raises(DataError, match=r"manifest\.csv line 4: num_frames 'twelve' is not an integer"):
        read_frame_folders(dataset_dir)
    errors = []
    ds = read_frame_folders(dataset_dir, errors=errors)
    assert len(ds) == 2 and len(errors) == 1 and str(errors[0]).endswith("manifest.csv line 4: num_frames 'twelve' is not an integer")


@pytest.mark.parametrize("row, message", [
    (["ep", "-1", "t"], "num_frames is -1, must be >= 0"),
    (["", "3", "t"], "directory is empty"),
    (["ep", "3"], "has 2 fields but the header has 3"),
])
def test_bad_row_values(tmp_path, row, message):
    write_manifest(tmp_path / "manifest.csv", ["directory", "num_frames", "text"], [["ep", 3, "ok"], row])
    with pytest.raises(DataError, match="manifest.csv line 3: " + message):
        read_frame_folders(tmp_path)


def test_bad_frame_pattern(tmp_path):
    write_manifest(tmp_path / "manifest.csv", ["directory", "num_frames", "text", "frame_pattern"],
                   [["ep", 3, "t", "frame.jpg"]])
    with pytest.raises(DataError, match="line 2: frame_pattern 'frame.jpg' must name one file per frame number"):
        read_frame_folders(tmp_path)


def test_missing_manifest(tmp_path):
    with pytest.raises(DataError, match="manifest.csv: manifest not found"):
        read_frame_folders(tmp_path)
