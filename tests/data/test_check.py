"""check_dataset / `liv data check`: statistics, every problem with its file and line, exit status."""

import argparse
import csv
import dataclasses
import json

import numpy as np
import pytest

from liv.cli_args import add_dataclass_arguments, dataclass_from_args, field_docs
from liv.data import ArrayFrames, Episode, EpisodeDataset
from liv.data.check import DataCheckArgs, check_dataset, check_path, run_data_check
from liv.data.frame_folders import write_frame_folders
from liv.data.video_write import write_video_manifest

FRAMES = np.random.default_rng(0).integers(0, 256, (12, 32, 48, 3), dtype=np.uint8)
EPISODES = [("open the drawer", FRAMES[:6]), ("close the drawer", FRAMES[:9]), ("push the button", FRAMES)]


def edit_manifest(path, row, column, value):
    rows = list(csv.reader(open(path)))
    rows[row][rows[0].index(column)] = value
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def args(path, *options):
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, DataCheckArgs)
    return dataclass_from_args(DataCheckArgs, parser.parse_args([str(path), *options]))


def test_every_option_is_documented(tmp_path):
    docs = field_docs(DataCheckArgs)
    assert all(docs.get(f.name) for f in dataclasses.fields(DataCheckArgs))
    a = args(tmp_path, "--full", "--json", "--format", "video", "--decode-frames", "5", "--text", "t")
    assert a.full and a.json and a.format == "video" and a.decode_frames == 5 and a.text == "t" and a.camera is None


def test_clean_dataset(tmp_path, capsys):
    write_frame_folders(tmp_path, EPISODES)
    report = check_path(tmp_path, decode_frames=3)
    assert report.ok and report.problems == []
    assert (report.episodes, report.frames, report.texts) == (3, 27, 3)
    assert (report.length_min, report.length_median, report.length_max) == (6, 9.0, 12)
    assert report.frame_sizes == {"48x32": 3} and report.decoded_frames == 9
    assert run_data_check(args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "3 episodes, 27 frames, 3 distinct texts" in out and "OK: no errors." in out
    assert run_data_check(args(tmp_path, "--full", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["decoded_frames"] == 27


def test_every_problem_is_listed_with_its_file_and_line(tmp_path, capsys):
    manifest = write_frame_folders(tmp_path, EPISODES + [("t", FRAMES[:1]), ("t", FRAMES[:3]), ("ok", FRAMES[:4])])
    (tmp_path / "episode_000000" / "3.png").unlink()                       # line 2: missing frame
    (tmp_path / "episode_000001" / "8.png").write_bytes(b"not a png")      # line 3: corrupt (the last frame is decoded)
    edit_manifest(manifest, 3, "num_frames", "15")                         # line 4: more frames listed than present
    edit_manifest(manifest, 4, "text", "")                                 # line 5: empty text, and 1 frame only
    edit_manifest(manifest, 5, "text", "pick " * 80)                       # line 6: longer than the context
    edit_manifest(manifest, 6, "num_frames", "four")                       # line 7: not an integer
    assert run_data_check(args(tmp_path)) == 1
    out = capsys.readouterr().out
    line = f"{manifest} line "
    expected = [
        f"error: {line}2: {tmp_path / 'episode_000000'}: 1 of 6 frame files missing: 3.png",
        f"error: {line}3: {tmp_path / 'episode_000001' / '8.png'}: cannot decode image",
        f"error: {line}4: {tmp_path / 'episode_000002'}: the manifest says num_frames=15 but only 12 frames are present",
        f"error: {line}5: empty text",
        f"warning: {line}5: {tmp_path / 'episode_000003'}: only 1 frame; sampling needs at least 2, so training "
        "leaves it out",
        f"error: {line}6: text is 80 tokens; with its start and end tokens that exceeds the context length 77",
        f"error: {line}7: num_frames 'four' is not an integer",
    ]
    for line in expected:
        assert line in out, f"missing {line!r} in:\n{out}"
    assert "FAILED: 6 errors." in out and "5 episodes" in out


def test_missing_column_is_one_error(tmp_path, capsys):
    (tmp_path / "manifest.csv").write_text("directory,text\nep,t\n")
    report = check_path(tmp_path)
    assert not report.ok and len(report.problems) == 1
    assert "manifest.csv: missing required column(s) num_frames" in str(report.problems[0])
    assert run_data_check(args(tmp_path)) == 1
    assert "missing required column(s) num_frames" in capsys.readouterr().out


def test_nothing_to_check(tmp_path, capsys):
    # (the command line refuses a missing path where it is parsed; the function reports it)
    assert run_data_check(DataCheckArgs(tmp_path / "missing")) == 1
    assert "no such file or folder" in capsys.readouterr().out


def test_full_decode_finds_what_the_sample_misses(tmp_path):
    write_frame_folders(tmp_path, EPISODES)
    (tmp_path / "episode_000002" / "5.png").write_bytes(b"garbage")
    assert check_path(tmp_path, decode_frames=1).ok  # only the last frame is decoded
    report = check_path(tmp_path, full=True)
    assert [p.message for p in report.errors] == [f"{tmp_path / 'episode_000002' / '5.png'}: cannot decode image "
                                                  f"(UnidentifiedImageError: cannot identify image file "
                                                  f"'{tmp_path / 'episode_000002' / '5.png'}')"]
    assert report.errors[0].where.endswith("manifest.csv line 4")


def test_truncated_video_is_reported_with_its_line(tmp_path):
    manifest = write_video_manifest(tmp_path, EPISODES)
    video = tmp_path / "videos" / "episode_000001.mp4"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    report = check_path(tmp_path)
    [problem] = report.errors
    assert problem.where == f"{manifest} line 3" and f"{video}: cannot open video" in problem.message
    assert report.episodes == 3 and report.frames == 18


def test_extra_frames_are_a_warning(tmp_path):
    manifest = write_frame_folders(tmp_path, EPISODES)
    edit_manifest(manifest, 3, "num_frames", "10")
    report = check_path(tmp_path)
    assert report.ok and len(report.warnings) == 1 and "10.png" in report.warnings[0].message


def test_episodes_from_any_source(tmp_path):
    episodes = [Episode(ArrayFrames(FRAMES[:1], "a"), "t", "mem 1"), Episode(ArrayFrames(FRAMES, "b"), "t", "mem 2")]
    report = check_dataset(EpisodeDataset(episodes, "memory", "array"), full=True, min_frames=3)
    assert [str(p) for p in report.problems] == ["warning: mem 1: a: only 1 frame; sampling needs at least 3, so "
                                                 "training leaves it out"]
    assert report.decoded_frames == 13 and report.frame_sizes == {"48x32": 2}


def test_an_episode_too_short_to_sample_is_a_warning(tmp_path, capsys):
    manifest = write_frame_folders(tmp_path, EPISODES[:2] + [("wave", FRAMES[:1])] + EPISODES[2:])
    report = check_path(tmp_path)
    assert report.ok and [str(p) for p in report.problems] == [
        f"warning: {manifest} line 4: {tmp_path / 'episode_000002'}: only 1 frame; sampling needs at least 2, so "
        "training leaves it out"]
    assert run_data_check(args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert f"warning: {manifest} line 4" in out and "0 errors, 1 warning:" in out and "OK: no errors." in out
    # Segment sampling needs 3 frames: 2 are too short there, fine for whole episodes.
    assert run_data_check(args(tmp_path, "--min-frames", "3")) == 0
    # An episode with no frames is left out too; a dataset with nothing long enough is an error.
    empty = Episode(ArrayFrames(FRAMES[:0], "none"), "t", "mem 0")
    report = check_dataset(EpisodeDataset([empty], "memory", "array"))
    assert [str(p) for p in report.problems] == [
        "warning: mem 0: none: only 0 frames; sampling needs at least 2, so training leaves it out",
        "error: memory: no episode has the 2 frames that sampling needs: all 1 are shorter (mem 0)"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_sample_is_seeded(tmp_path, seed):
    write_frame_folders(tmp_path, EPISODES)
    a, b = check_path(tmp_path, seed=seed), check_path(tmp_path, seed=seed)
    assert a.to_dict() == b.to_dict()
