"""LeRobot per-row timestamps: repeated, backwards and out-of-sync rows are reported and never read.

Frame k of every video is a flat grey image of level 8 + 6k (k counts over the whole dataset), so
``round((mean - 8) / 6)`` says which frame a read returned.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("av")

from liv.data.check import check_path  # noqa: E402
from liv.data.episodes import DataError  # noqa: E402
from liv.data.lerobot import read_lerobot, write_lerobot  # noqa: E402
from liv.data.lerobot_timestamps import TOLERANCE_S, EpisodeTimes, bad_rows, row_problem  # noqa: E402
from liv.data.lerobot_write import _tasks_parquet  # noqa: E402

FPS, T, EPISODES = 30, 9, 3


def grey(k: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), 8 + 6 * k, np.uint8)


def which(frames: np.ndarray) -> list[int]:
    """The frame number k of each returned frame, from its grey level."""
    return [round((float(f.mean()) - 8) / 6) for f in frames]


def write(root: Path, version: str) -> Path:
    episodes = [{"frames": np.stack([grey(T * e + t) for t in range(T)]), "task": f"task {e}"}
                for e in range(EPISODES)]
    return write_lerobot(root, episodes, FPS, version=version)


def rewrite_timestamps(root: Path, episode: int, change) -> None:
    """Replace episode ``episode``'s timestamps ts (T,) float64 by ``change(ts)``, stored as float32 as LeRobot does."""
    for path in sorted((root / "data").glob("*/*.parquet")):
        table = pq.read_table(path)
        rows = np.flatnonzero(np.asarray(table.column("episode_index").to_pylist()) == episode)
        if not rows.size:
            continue
        ts = np.asarray(table.column("timestamp").to_pylist(), np.float64)
        ts[rows] = change(ts[rows].copy())
        column = table.column_names.index("timestamp")
        pq.write_table(table.set_column(column, "timestamp", pa.array(ts.astype(np.float32))), path)


def repeat(ts):
    ts[5] = ts[4]
    return ts


def backwards(ts):
    ts[-1] = 0.0
    return ts


def gap(ts):
    ts[5:] += 1 / FPS  # a skipped timestamp: rows 5.. point at their successors' frames
    return ts


# ------------------------------------------------------------------------------------- the check itself

def test_good_timestamps_have_no_bad_rows():
    ts = (np.arange(T) / FPS).astype(np.float32)
    assert bad_rows(ts, FPS).size == 0 and bad_rows(ts, FPS, np.arange(T)).size == 0
    assert EpisodeTimes(ts, FPS, 0).problem() is None


@pytest.mark.parametrize("change, rows, words", [
    (repeat, [5], "timestamp 0.1333 s is not after row 4's 0.1333 s"),
    (backwards, [8], "timestamp 0.0000 s is not after row 7's 0.2333 s"),
    (gap, [5, 6, 7, 8], "timestamp 0.2000 s is out of sync: frame 5 at 30 fps is at 0.1667 s, 33.33 ms away"),
    (lambda ts: np.where(np.arange(T) == 3, 10.0, ts), [3], "timestamp 10.0000 s is not before row 4's"),
    (lambda ts: np.where(np.arange(T) == 2, np.nan, ts), [2], "timestamp nan s"),
])
def test_each_fault_is_pinned_to_the_rows_it_affects(change, rows, words):
    ts = change(np.arange(T) / FPS)
    assert bad_rows(ts, FPS).tolist() == rows
    assert row_problem(rows[0], ts, FPS).startswith(words)


def test_tolerance_is_lerobots():
    ts = np.arange(T) / FPS
    assert bad_rows(ts + 0.9 * TOLERANCE_S, FPS).size == 0
    assert bad_rows(ts + 1.1 * TOLERANCE_S, FPS).tolist() == list(range(T))


def test_float32_rounding_of_long_episodes_is_not_a_fault():
    # Two hours at 30 fps: float32 seconds are 0.24 ms apart there, more than the tolerance.
    n = 2 * 3600 * FPS
    assert bad_rows((np.arange(n) / FPS).astype(np.float32), FPS).size == 0


def test_frame_index_must_number_the_rows():
    ts, index = np.arange(T) / FPS, np.arange(T)
    index[6] = 7
    assert bad_rows(ts, FPS, index).tolist() == [6]
    assert "frame_index is 7 but this is the episode's row 6" in row_problem(6, ts, FPS, index)


def test_summary_names_file_episode_row_and_counts_the_others():
    times = EpisodeTimes(gap(np.arange(T) / FPS), FPS, 4, data_file="d/file-000.parquet", row_start=20)
    assert times.problem() == ("d/file-000.parquet episode 4 row 5 (0-based; row 25 of the file): timestamp "
                               "0.2000 s is out of sync: frame 5 at 30 fps is at 0.1667 s, 33.33 ms away (LeRobot "
                               "allows 0.1 ms); also rows 6, 7, 8")
    times.refuse([0, 4])  # good rows pass
    with pytest.raises(DataError, match=r"^d/file-000\.parquet episode 4 row 6 \(0-based; row 26 of the file\): "):
        times.refuse([6, 0, 7])


# --------------------------------------------------------------------------------------- whole datasets

@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
@pytest.mark.parametrize("change, first, bad", [(repeat, 5, [5]), (backwards, 8, [8]), (gap, 5, [5, 6, 7, 8])])
def test_bad_episode_is_reported_and_its_bad_rows_refused(tmp_path, version, change, first, bad):
    root = write(tmp_path / "ds", version)
    rewrite_timestamps(root, 1, change)
    ds = read_lerobot(root)
    data_file = r"episode_000001\.parquet" if version == "v2.1" else r"file-000\.parquet"
    file_row = r"\(0-based\)" if version == "v2.1" else rf"\(0-based; row {T + first} of the file\)"  # v3.0: one file
    place = rf"{data_file} episode 1 row {first} {file_row}: timestamp"

    report = check_path(root)
    assert not report.ok and len(report.errors) == 1 and not report.warnings
    # The episode's metadata: v2.1 a JSON line (1-based, as editors count), v3.0 a parquet table row (0-based).
    listed = "episodes.jsonl line 2" if version == "v2.1" else "file-000.parquet row 1 (0-based)"
    assert report.errors[0].where.endswith(listed)
    assert re.search(place, report.errors[0].message)
    [problem] = ds[1].frames.validate(full=False)  # found without decoding anything
    assert re.search(place, problem)
    assert [e.frames.validate(full=True) for e in (ds[0], ds[2])] == [[], []]

    for rows in ([first], list(range(T)), [0, first]):
        with pytest.raises(DataError, match=place):
            ds[1].frames.read(rows)
    with pytest.raises(DataError, match=place.replace(": timestamp", r" \(episode .*\): timestamp")):
        ds[1].read([first])  # the episode adds where it was declared
    good = [r for r in range(T) if r not in bad]
    assert which(ds[1].read(good[::-1])) == [T + r for r in good[::-1]]
    for e in (0, 2):
        assert which(ds[e].all_frames()) == [T * e + t for t in range(T)]


def test_cli_exits_1_naming_episode_and_row(tmp_path, capsys):
    from liv.cli import main

    root = write(tmp_path / "ds", "v2.1")
    rewrite_timestamps(root, 0, backwards)
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "episode_000000.parquet episode 0 row 8 (0-based): timestamp 0.0000 s is not after row 7's 0.2333 s" in out
    assert "Traceback" not in out and "FAILED: 1 error." in out


def test_fps_disagreeing_with_the_video_is_a_warning_and_explains_failed_reads(tmp_path):
    root = write(tmp_path / "ds", "v2.1")
    info = json.loads((root / "meta/info.json").read_text())
    info["fps"] = 15  # the videos run at 30 fps
    (root / "meta/info.json").write_text(json.dumps(info))
    for e in range(EPISODES):
        rewrite_timestamps(root, e, lambda ts: np.arange(len(ts)) / 15)  # consistent with the 15 fps claimed
    ds = read_lerobot(root)
    problems = ds[0].frames.validate(full=False)
    assert problems == [f"warning: {ds[0].frames.describe()}: the video's frame rate is 30 fps but meta/info.json "
                        f"says fps 15; frames are found at their rows' timestamps, and a row with no frame at its "
                        f"time is refused"]
    with pytest.raises(DataError, match=r"no video frame at 0\.533333 s: the video ends first .* the video runs at 30 fps but meta/info\.json "
                                        r"says fps 15"):
        ds[0].read([T - 1])
    report = check_path(root)
    assert [p.severity for p in report.problems if "frame rate is 30 fps" in p.message] == ["warning"] * EPISODES


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_a_faster_video_gives_the_frame_at_each_rows_time_not_a_neighbour(tmp_path, version):
    # Rows every 0.1 s (info.json: 10 fps), video at 30 fps: row i's frame is video frame 3i. A window of
    # 0.4 frame periods of the claimed rate (40 ms) also holds frame 3i - 1, 33 ms earlier.
    root = write(tmp_path / "ds", version)
    info = json.loads((root / "meta/info.json").read_text())
    info["fps"] = 10
    (root / "meta/info.json").write_text(json.dumps(info))
    for e in range(EPISODES):
        rewrite_timestamps(root, e, lambda ts: np.arange(len(ts)) / 10)
    ds = read_lerobot(root)
    for e in range(EPISODES):
        assert which(ds[e].read([2, 0, 1])) == [T * e + 6, T * e, T * e + 3]
        past = ("no video frame at 0\\.300000 s" if version == "v2.1"
                else r"the time of the episode's row 3 \(0-based\), .* is past its segment")
        with pytest.raises(DataError, match=past):
            ds[e].read([3])  # 0.3 s is past the 9 frames (in v3.0, the next episode's frames follow)


def test_a_video_slightly_off_the_rows_times_is_refused_not_read_as_a_neighbour(tmp_path):
    root = write(tmp_path / "ds", "v2.1")
    rewrite_timestamps(root, 0, lambda ts: np.arange(len(ts)) / 29.97)  # a recording at NTSC's 29.97 fps
    info = json.loads((root / "meta/info.json").read_text())
    info["fps"] = 29.97
    (root / "meta/info.json").write_text(json.dumps(info))
    ds = read_lerobot(root)
    assert which(ds[0].read([0, 1])) == [0, 1]  # row 1 is 0.03 ms from frame 1: within LeRobot's 0.1 ms
    with pytest.raises(DataError, match=r"episode_000000\.mp4 \(episode 0\).*: no video frame at 0\.266934 s: the "
                                        r"video ends first \(its last frame is at 0\.266667 s\)"):
        ds[0].read([8])  # 0.27 ms from frame 8, whose time it no longer is

    from PIL import Image

    root = tmp_path / "images"
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    cells = []
    for k in range(2 * T):
        buffer = io.BytesIO()
        Image.fromarray(grey(k)).save(buffer, format="PNG")
        cells.append({"bytes": buffer.getvalue(), "path": None})
    ts = np.concatenate([np.arange(T) / FPS, backwards(np.arange(T) / FPS)]).astype(np.float32)
    pq.write_table(pa.table({"observation.image": cells, "timestamp": ts, "frame_index": [*range(T)] * 2,
                             "episode_index": [0] * T + [1] * T, "task_index": [0] * (2 * T)}),
                   root / "data/chunk-000/file-000.parquet")
    pq.write_table(pa.Table.from_pylist([
        {"episode_index": e, "tasks": ["stack"], "length": T, "data/chunk_index": 0, "data/file_index": 0}
        for e in range(2)]), root / "meta/episodes/chunk-000/file-000.parquet")
    _tasks_parquet(root / "meta/tasks.parquet", ["stack"])
    features = {"observation.image": {"dtype": "image", "shape": [32, 32, 3]},
                "timestamp": {"dtype": "float32", "shape": [1]}, "episode_index": {"dtype": "int64", "shape": [1]}}
    (root / "meta/info.json").write_text(json.dumps({
        "codebase_version": "v3.0", "fps": FPS, "features": features,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"}))
    ds = read_lerobot(root)
    assert ds[0].frames.validate(full=True) == []
    [warning] = ds[1].frames.validate(full=True)
    assert warning.startswith("warning: ") and ("file-000.parquet episode 1 row 8 (0-based; row 17 of the file): "
                                                "timestamp 0.0000 s is not after row 7's 0.2333 s") in warning
    assert which(ds[1].all_frames()) == list(range(T, 2 * T))  # frames are found by row, so all are right
    report = check_path(root)
    assert report.ok and len(report.warnings) == 1
