"""EPIC-KITCHENS-100 converter: manifest contents, filters, the frame-numbering contract, bad input, CLI."""

from __future__ import annotations

import argparse
import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liv.cli_args import add_dataclass_arguments, dataclass_from_args, field_docs
from liv.data.epic_kitchens import (
    OUTPUT_COLUMNS,
    EpicKitchensArgs,
    convert_epic_kitchens,
    run_epic_kitchens,
)
from liv.data.episodes import DataError

HEADER = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp", "stop_timestamp",
          "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class", "all_nouns",
          "all_noun_classes"]
VIDEOS = {("P01", "P01_01"): 30, ("P02", "P02_03"): 20}  # frame files 1..N exist
ROWS = [  # (narration_id, participant, video, start, stop, narration, verb, noun)
    ("P01_01_0", "P01", "P01_01", 3, 10, "open door", "open", "door"),
    ("P01_01_1", "P01", "P01_01", 12, 13, "take cup", "take", "cup"),          # 2 frames: too short
    ("P02_03_0", "P02", "P02_03", 5, 20, "close drawer, slowly", "close", "drawer"),
    ("P02_03_1", "P02", "P02_03", 18, 25, "wash plate", "wash", "plate"),      # frames 21..25 absent
    ("P01_02_0", "P01", "P01_02", 1, 5, "open tap", "open", "tap"),            # no such video folder
]


def frame_value(number: int) -> int:
    return (number * 8) % 256


def decoded_number(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / 8)


@pytest.fixture(scope="module")
def epic(tmp_path_factory) -> Path:
    """tmp/frames/<participant>/rgb_frames/<video>/frame_XXXXXXXXXX.jpg (flat colour = 8 * number) + annotations."""
    root = tmp_path_factory.mktemp("epic")
    for (participant, video), count in VIDEOS.items():
        folder = root / "frames" / participant / "rgb_frames" / video
        folder.mkdir(parents=True)
        for n in range(1, count + 1):
            Image.fromarray(np.full((16, 16, 3), frame_value(n), np.uint8)).save(folder / f"frame_{n:010d}.jpg")
    with open(root / "EPIC_100_train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for nid, participant, video, start, stop, text, verb, noun in ROWS:
            writer.writerow([nid, participant, video, "00:00:01.00", "00:00:01.00", "00:00:02.00", start, stop, text,
                             verb, 0, noun, 1, f"['{noun}', 'hand']", "[1, 2]"])
    return root


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_converts_kept_segments_and_reports_missing(epic):
    out = epic / "manifest.csv"
    report = convert_epic_kitchens(epic / "EPIC_100_train.csv", epic / "frames", out)
    assert report.out == out and report.kept == 2 and report.total == 5
    assert report.dropped == {"shorter than min_frames": 1, "missing frames": 2}
    assert len(report.missing) == 2
    assert "EPIC_100_train.csv line 5 (narration_id P02_03_1)" in report.missing[0]
    assert "frame_0000000025.jpg" in report.missing[0] and "frame_0000000018.jpg" not in report.missing[0]
    assert "line 6 (narration_id P01_02_0)" in report.missing[1] and "P01_02" in report.missing[1]
    assert "kept 2 of 5 segments" in report.summary()
    rows = read_manifest(out)
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    assert rows[0] == {"directory": "frames/P01/rgb_frames/P01_01", "num_frames": "8", "text": "open door",
                       "start_frame": "3", "frame_pattern": "frame_{:010d}.jpg", "narration_id": "P01_01_0",
                       "participant_id": "P01", "video_id": "P01_01", "verb": "open", "noun": "door"}
    assert rows[1]["text"] == "close drawer, slowly" and rows[1]["num_frames"] == "16"


def test_directory_is_absolute_outside_the_manifest_folder(epic, tmp_path):
    out = tmp_path / "elsewhere" / "epic.csv"
    convert_epic_kitchens(epic / "EPIC_100_train.csv", epic / "frames", out)
    directory = Path(read_manifest(out)[0]["directory"])
    assert directory.is_absolute() and directory.resolve() == (epic / "frames/P01/rgb_frames/P01_01").resolve()


def test_an_existing_folder_gets_manifest_csv(epic, tmp_path):
    report = convert_epic_kitchens(epic / "EPIC_100_train.csv", epic / "frames", tmp_path)
    assert report.out == tmp_path / "manifest.csv" and report.out.is_file()


def test_frame_numbering_contract(epic):
    """Episode frame i is file number start_frame + i: exactly [start_frame, stop_frame], no reference off-by-one."""
    frame_folders = pytest.importorskip("liv.data.frame_folders")
    out = epic / "contract.csv"
    convert_epic_kitchens(epic / "EPIC_100_train.csv", epic / "frames", out)
    ds = frame_folders.read_frame_folders(out)
    assert [len(e) for e in ds] == [8, 16] and ds.texts == ["open door", "close drawer, slowly"]
    first = ds[0]
    assert [decoded_number(f) for f in first.all_frames()] == list(range(3, 11))  # files 3..10
    assert [decoded_number(f) for f in ds[1].read([0, 15])] == [5, 20]
    assert first.meta["narration_id"] == "P01_01_0" and first.meta["verb"] == "open"
    assert all(e.frames.validate(full=False) == [] for e in ds)


@pytest.mark.parametrize("filters, kept, dropped", [
    ({"verbs": ["OPEN"]}, ["P01_01_0"], {"shorter than min_frames": 1, "verb": 2, "missing frames": 1}),
    ({"nouns": ["drawer", "plate"]}, ["P02_03_0"], {"shorter than min_frames": 1, "noun": 2, "missing frames": 1}),
    ({"participants": ["P02"]}, ["P02_03_0"], {"shorter than min_frames": 1, "participant": 2, "missing frames": 1}),
    ({"min_frames": 10}, ["P02_03_0"], {"shorter than min_frames": 4}),
    ({"check_files": False}, ["P01_01_0", "P02_03_0", "P02_03_1", "P01_02_0"], {"shorter than min_frames": 1}),
    ({"min_frames": 1, "verbs": ["take"]}, ["P01_01_1"], {"verb": 4}),
])
def test_filters(epic, tmp_path, filters, kept, dropped):
    out = tmp_path / "m.csv"
    report = convert_epic_kitchens(epic / "EPIC_100_train.csv", epic / "frames", out, **filters)
    assert [r["narration_id"] for r in read_manifest(out)] == kept
    assert dict(report.dropped) == dropped and report.kept == len(kept)


@pytest.mark.parametrize("edit, message", [
    (lambda rows: [[c for c in r if c != "stop_frame"] for r in rows], None),
    (lambda rows: rows[:2] + [[*rows[2][:6], "abc", *rows[2][7:]]], r"line 3: start_frame 'abc' is not a frame number"),
    (lambda rows: rows[:2] + [[*rows[2][:6], "9", "4", *rows[2][8:]]], r"line 3: stop_frame 4 is before start_frame 9"),
    (lambda rows: rows[:2] + [rows[2][:5]], r"line 3: has 5 fields but the header has 15"),
])
def test_bad_annotations(epic, tmp_path, edit, message):
    with open(epic / "EPIC_100_train.csv", newline="") as f:
        rows = list(csv.reader(f))
    if message is None:  # drop the stop_frame column everywhere
        index = rows[0].index("stop_frame")
        rows = [r[:index] + r[index + 1:] for r in rows]
        message = "missing column.*stop_frame"
    else:
        rows = edit(rows)
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(DataError, match=message) as e:
        convert_epic_kitchens(bad, epic / "frames", tmp_path / "m.csv")
    assert str(bad) in str(e.value)
    assert not (tmp_path / "m.csv").exists()


def test_missing_inputs(epic, tmp_path):
    with pytest.raises(DataError, match="annotations file not found"):
        convert_epic_kitchens(tmp_path / "nope.csv", epic / "frames", tmp_path / "m.csv")
    with pytest.raises(DataError, match="frames folder not found"):
        convert_epic_kitchens(epic / "EPIC_100_train.csv", tmp_path / "no_frames", tmp_path / "m.csv")


def test_command_line(epic, tmp_path, capsys):
    names = {f.name for f in dataclasses.fields(EpicKitchensArgs)}
    docs = field_docs(EpicKitchensArgs)
    assert set(docs) == names and all(docs.values())
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, EpicKitchensArgs)
    out = tmp_path / "cli.csv"
    ns = parser.parse_args(["--annotations", str(epic / "EPIC_100_train.csv"), "--frames", str(epic / "frames"),
                            "--out", str(out), "--verbs", "open", "close"])
    args = dataclass_from_args(EpicKitchensArgs, ns)
    assert args.verbs == ["open", "close"] and args.check_files is True and args.min_frames == 3
    assert run_epic_kitchens(args) == 0
    printed = capsys.readouterr().out
    assert "line 6 (narration_id P01_02_0)" in printed and "kept 2 of 5 segments" in printed
    assert [r["narration_id"] for r in read_manifest(out)] == ["P01_01_0", "P02_03_0"]
    none = dataclass_from_args(EpicKitchensArgs, parser.parse_args(
        ["--annotations", str(epic / "EPIC_100_train.csv"), "--frames", str(epic / "frames"), "--out", str(out),
         "--participants", "P09"]))
    assert run_epic_kitchens(none) == 1
