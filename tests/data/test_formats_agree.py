"""The same episodes written in every format load to identical frames and texts.

Frame folders (PNG), video files and LeRobot v2.1 / v3.0 are written losslessly and must give back the
original pixels; EPIC-KITCHENS frames are JPEGs by definition, so the EPIC tree is built from the very
JPEG files of a JPEG frame-folder dataset, and both readers must decode them identically.
"""

import csv
import shutil

import numpy as np
import pytest

from liv.data import open_dataset, write_frame_folders, write_lerobot, write_video_manifest
from liv.data.epic_kitchens import convert_epic_kitchens

TEXTS = ["open the drawer", "close the drawer", "turn the faucet left"]


@pytest.fixture(scope="module")
def episodes():
    rng = np.random.default_rng(7)
    return [(TEXTS[i], rng.integers(0, 256, (6 + 2 * i, 32, 48, 3), dtype=np.uint8)) for i in range(3)]


def _loaded(dataset):
    return [(e.text, e.all_frames()) for e in dataset]


def _assert_same(loaded, expected):
    assert [t for t, _ in loaded] == [t for t, _ in expected]
    for (_, a), (_, b) in zip(loaded, expected):
        assert a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("fmt", ["frames", "video", "lerobot-v2.1", "lerobot-v3.0"])
def test_lossless_formats_give_back_the_original_frames(tmp_path, episodes, fmt):
    if fmt == "frames":
        path = write_frame_folders(tmp_path, episodes)
    elif fmt == "video":
        path = write_video_manifest(tmp_path, episodes, lossless=True)
    else:
        path = write_lerobot(tmp_path / "lerobot", [{"frames": f, "task": t} for t, f in episodes], fps=10,
                             version=fmt.split("-")[1], lossless=True, episodes_per_file=2)
    _assert_same(_loaded(open_dataset(path)), episodes)


def test_epic_kitchens_conversion_reads_the_same_jpegs(tmp_path, episodes):
    jpg_manifest = write_frame_folders(tmp_path / "jpg", episodes, image_format="jpg")
    reference = _loaded(open_dataset(jpg_manifest))
    # One EPIC video holding the three episodes back to back; frame numbers are 1-based.
    video = tmp_path / "epic" / "P01" / "rgb_frames" / "P01_01"
    video.mkdir(parents=True)
    rows, number = [], 1
    for k, (text, frames) in enumerate(episodes):
        start = number
        for i in range(len(frames)):
            shutil.copy(tmp_path / "jpg" / f"episode_{k:06d}" / f"{i}.jpg", video / f"frame_{number:010d}.jpg")
            number += 1
        rows.append([f"P01_01_{k}", "P01", "P01_01", start, number - 1, text, text.split()[0], text.split()[-1]])
    annotations = tmp_path / "EPIC_100_train.csv"
    with open(annotations, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "narration", "verb",
                    "noun"])
        w.writerows(rows)
    report = convert_epic_kitchens(annotations, tmp_path / "epic", tmp_path / "epic_manifest.csv", min_frames=2)
    assert report.kept == 3
    _assert_same(_loaded(open_dataset(tmp_path / "epic_manifest.csv")), reference)
    # and the JPEGs are close to the originals (quality 95, no chroma subsampling; uniform noise is
    # JPEG's worst case: measured mean error 3.2 grey levels, against ~0.35 on camera-like images)
    for (_, a), (_, b) in zip(reference, episodes):
        assert np.abs(a.astype(int) - b).mean() < 5
