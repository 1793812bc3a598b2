"""LeRobot v2.1 / v3.0: write -> read round trips, layout, camera choice, bad input, validate."""

from __future__ import annotations

import io
import json
import multiprocessing
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("av")

from liv.data.episodes import DataError  # noqa: E402
from liv.data.lerobot import LeRobotVideoFrames, read_lerobot, write_lerobot  # noqa: E402
from liv.data.lerobot_write import _tasks_parquet  # noqa: E402

H, W, FPS = 32, 48, 10
LENGTHS = (8, 12, 15)
TASKS = ("open the drawer", "close the drawer", "open the drawer")
CAMERA = "observation.images.main"
TOLERANCE = 8  # max |decoded - written| seen is 2 at crf 23 on these flat blocks; blocks differ by >= 16


def make_frames(episode: int, length: int) -> np.ndarray:
    """(T, H, W, 3) uint8: left block = 16 * frame index, middle = 70 * episode, right a fixed colour."""
    frames = np.zeros((length, H, W, 3), np.uint8)
    for i in range(length):
        frames[i, :, :16] = 16 * i
        frames[i, :, 16:32] = 70 * episode
        frames[i, :, 32:] = (200, 40, 90)
    return frames


def identify(frames: np.ndarray) -> list[tuple[int, int]]:
    """(episode, frame index) read back from the colour blocks of each frame."""
    return [(round(f[8:24, 20:28].mean() / 70), round(f[8:24, 4:12].mean() / 16)) for f in frames]


@pytest.fixture(scope="module")
def source() -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"frames": make_frames(k, n), "task": TASKS[k], "actions": rng.normal(size=(n, 4)).astype(np.float32),
             "states": rng.normal(size=(n, 3)).astype(np.float32), "success": np.arange(n) >= n - 2 if k != 1 else
             np.zeros(n, bool)} for k, n in enumerate(LENGTHS)]


@pytest.fixture(scope="module")
def datasets(source, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("lerobot")
    return {
        # v2.1 with 2 episodes per chunk folder: episode 2 lands in chunk-001.
        "v2.1": write_lerobot(base / "v21", source, FPS, version="v2.1", chunks_size=2),
        # v3.0, 2 episodes per file and 1 file per chunk: episodes 0+1 share a file, episode 2 is in chunk-001.
        "v3.0": write_lerobot(base / "v30", source, FPS, version="v3.0", episodes_per_file=2, chunks_size=1),
        # v3.0 with data and video files split differently: one data file per episode, one video for all.
        "v3.0-split": write_lerobot(base / "v30s", source, FPS, version="v3.0", data_files_size_in_mb=1e-6),
    }


def copy(datasets, key, tmp_path) -> Path:
    return Path(shutil.copytree(datasets[key], tmp_path / key))


@pytest.mark.parametrize("key", ["v2.1", "v3.0", "v3.0-split"])
def test_round_trip(datasets, source, key):
    ds = read_lerobot(datasets[key])
    assert ds.format == "lerobot" and len(ds) == 3
    assert [len(e) for e in ds] == list(LENGTHS)
    assert [e.text for e in ds] == list(TASKS) and ds.texts == ["open the drawer", "close the drawer"]
    for k, (episode, want) in enumerate(zip(ds, source)):
        assert episode.meta["episode_index"] == k and episode.meta["camera"] == CAMERA and episode.meta["fps"] == FPS
        assert episode.meta["task_index"] == (1 if k == 1 else 0)
        np.testing.assert_array_equal(episode.actions, want["actions"])
        np.testing.assert_array_equal(episode.states, want["states"])
        np.testing.assert_array_equal(episode.success, want["success"])
        assert episode.succeeded == (k != 1)
        frames = episode.all_frames()
        assert frames.shape == (LENGTHS[k], H, W, 3) and frames.dtype == np.uint8
        assert identify(frames) == [(k, i) for i in range(LENGTHS[k])]
        assert np.abs(frames.astype(int) - want["frames"]).max() <= TOLERANCE
        picked = episode.read([LENGTHS[k] - 1, 0, 3, 3])
        assert identify(picked) == [(k, LENGTHS[k] - 1), (k, 0), (k, 3), (k, 3)]
        assert episode.frames.validate(full=True) == []


def test_v30_episodes_share_files_and_chunks(datasets):
    root = datasets["v3.0"]
    videos = sorted(p.relative_to(root).as_posix() for p in root.glob("videos/**/*.mp4"))
    assert videos == [f"videos/{CAMERA}/chunk-000/file-000.mp4", f"videos/{CAMERA}/chunk-001/file-000.mp4"]
    assert sorted(p.relative_to(root).as_posix() for p in root.glob("data/*/*.parquet")) == [
        "data/chunk-000/file-000.parquet", "data/chunk-001/file-000.parquet"]
    rows = pq.read_table(next(root.glob("meta/episodes/*/*.parquet"))).to_pylist()
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [(0, 8), (8, 20), (20, 35)]
    second = rows[1]  # not the first episode of its file: starts 8 frames (0.8 s) in
    assert second[f"videos/{CAMERA}/from_timestamp"] == pytest.approx(0.8)
    assert second[f"videos/{CAMERA}/to_timestamp"] == pytest.approx(2.0)
    ds = read_lerobot(root)
    assert ds[1].frames.path == ds[0].frames.path != ds[2].frames.path
    assert ds[1].frames.from_timestamp == pytest.approx(0.8) and ds[2].frames.from_timestamp == 0


def test_v30_split_files_have_independent_boundaries(datasets):
    root = datasets["v3.0-split"]
    assert len(list(root.glob("data/*/*.parquet"))) == 3
    assert len(list(root.glob("videos/**/*.mp4"))) == 1
    assert read_lerobot(root)[2].frames.from_timestamp == pytest.approx(2.0)


def test_metadata_and_stats(datasets, source):
    v30 = json.loads((datasets["v3.0"] / "meta" / "info.json").read_text())
    assert v30["codebase_version"] == "v3.0" and v30["fps"] == FPS and v30["total_frames"] == sum(LENGTHS)
    assert v30["total_episodes"] == 3 and v30["total_tasks"] == 2 and v30["splits"] == {"train": "0:3"}
    features = v30["features"]
    assert features[CAMERA]["dtype"] == "video" and features[CAMERA]["shape"] == [H, W, 3]
    assert features[CAMERA]["info"]["video.codec"] == "h264" and features[CAMERA]["info"]["video.pix_fmt"] == "yuv420p"
    assert features["action"] == {"dtype": "float32", "shape": [4], "names": [f"action_{i}" for i in range(4)]}
    assert features["next.success"]["dtype"] == "bool"
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[key]["shape"] == [1]
    stats = json.loads((datasets["v3.0"] / "meta" / "stats.json").read_text())
    actions = np.concatenate([s["actions"] for s in source])
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], actions.std(0), rtol=1e-5, atol=1e-6)
    assert stats["action"]["count"] == [sum(LENGTHS)] and stats["index"]["max"] == [sum(LENGTHS) - 1]
    assert np.array(stats[CAMERA]["mean"]).shape == (3, 1, 1) and "q99" in stats["action"]
    tasks = pq.read_table(datasets["v3.0"] / "meta" / "tasks.parquet")
    assert tasks.to_pylist() == [{"task_index": 0, "task": "open the drawer"},
                                 {"task_index": 1, "task": "close the drawer"}]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]

    root = datasets["v2.1"]
    v21 = json.loads((root / "meta" / "info.json").read_text())
    assert v21["codebase_version"] == "v2.1" and v21["total_chunks"] == 2 and v21["total_videos"] == 3
    episodes = [json.loads(line) for line in (root / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert episodes[1] == {"episode_index": 1, "tasks": ["close the drawer"], "length": 12}
    ep_stats = [json.loads(line) for line in (root / "meta" / "episodes_stats.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(ep_stats[2]["stats"]["action"]["max"], source[2]["actions"].max(0), rtol=1e-6)
    assert (root / f"videos/chunk-001/{CAMERA}/episode_000002.mp4").is_file()
    assert (root / "data/chunk-001/episode_000002.parquet").is_file()


def test_tasks_parquet_reads_in_pandas(datasets):
    pd = pytest.importorskip("pandas")
    tasks = pd.read_parquet(datasets["v3.0"] / "meta" / "tasks.parquet")
    assert tasks.index.name == "task" and int(tasks.loc["close the drawer"].task_index) == 1
    assert tasks.iloc[0].name == "open the drawer"


def test_tasks_parquet_with_unnamed_index(datasets, tmp_path):
    root = copy(datasets, "v3.0", tmp_path)
    table = pa.table({"task_index": [0, 1], "__index_level_0__": ["open the drawer", "close the drawer"]})
    pq.write_table(table, root / "meta" / "tasks.parquet")
    assert read_lerobot(root).texts == ["open the drawer", "close the drawer"]


def test_episode_metadata_in_several_files(datasets, tmp_path):
    root = copy(datasets, "v3.0", tmp_path)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 2), path)
    (root / "meta/episodes/chunk-001").mkdir()
    pq.write_table(table.slice(2), root / "meta/episodes/chunk-001/file-000.parquet")
    ds = read_lerobot(root)
    assert [len(e) for e in ds] == list(LENGTHS) and identify(ds[2].read([14])) == [(2, 14)]


def test_camera_choice(datasets, tmp_path):
    root = copy(datasets, "v3.0", tmp_path)
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["features"]["observation.images.wrist"] = dict(info["features"][CAMERA])
    info_path.write_text(json.dumps(info))
    with pytest.raises(DataError, match=f"2 cameras.*{CAMERA}, observation.images.wrist") as e:
        read_lerobot(root)
    assert "info.json" in str(e.value)
    with pytest.raises(DataError, match="no camera 'nope'; the cameras are: "):
        read_lerobot(root, camera="nope")
    ds = read_lerobot(root, camera=CAMERA)
    assert ds[0].meta["camera"] == CAMERA and identify(ds[0].read([1])) == [(0, 1)]


@pytest.mark.parametrize("content, message", [
    (None, "meta/info.json: missing"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"codebase_version": "v2.0", "fps": 10, "features": {}}', "codebase_version 'v2.0' is not supported"),
    ('{"fps": 10, "features": {}}', "codebase_version None is not supported"),
    ('{"codebase_version": "v3.0", "fps": 0, "features": {}}', "fps must be a positive number"),
    ('{"codebase_version": "v3.0", "fps": 10, "features": {}}', "no video or image feature"),
])
def test_bad_info_json(datasets, tmp_path, content, message):
    root = copy(datasets, "v3.0", tmp_path)
    info = root / "meta" / "info.json"
    if content is None:
        info.unlink()
    else:
        info.write_text(content)
    with pytest.raises(DataError, match=message) as e:
        read_lerobot(root)
    assert str(info) in str(e.value)


def test_missing_video_file(datasets, tmp_path):
    root = copy(datasets, "v2.1", tmp_path)
    video = root / f"videos/chunk-001/{CAMERA}/episode_000002.mp4"
    video.unlink()
    with pytest.raises(DataError, match=r"episode_000002\.mp4: video file not found .*episode 2"):
        read_lerobot(root)
    ds = read_lerobot(root, check_videos=False)
    assert ds[0].frames.validate(full=False) == []
    problems = ds[2].frames.validate(full=False)
    assert len(problems) == 1 and str(video) in problems[0] and "not found" in problems[0]
    with pytest.raises(DataError, match="episode_000002.mp4.*episode 2"):
        ds[2].read([0])


def test_missing_data_file(datasets, tmp_path):
    root = copy(datasets, "v3.0", tmp_path)
    (root / "data/chunk-001/file-000.parquet").unlink()
    with pytest.raises(DataError, match=r"chunk-001/file-000\.parquet \(episode 2\): file not found"):
        read_lerobot(root)


def test_validate_reports_parquet_rows_disagreeing_with_video(datasets, tmp_path):
    root = copy(datasets, "v2.1", tmp_path)
    data = root / "data/chunk-000/episode_000001.parquet"
    pq.write_table(pq.read_table(data).slice(0, 10), data)  # the video keeps its 12 frames
    lines = (root / "meta/episodes.jsonl").read_text().replace('"length": 12', '"length": 10')
    (root / "meta/episodes.jsonl").write_text(lines)
    ds = read_lerobot(root)
    assert len(ds[1]) == 10 and ds[0].frames.validate(full=True) == []
    problems = ds[1].frames.validate(full=False)
    assert len(problems) == 1
    assert "episode_000001.mp4" in problems[0] and "12 frames" in problems[0] and "10 rows" in problems[0]


def test_validate_reports_segment_beyond_video(datasets, tmp_path):
    root = copy(datasets, "v3.0", tmp_path)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(path).to_pylist()
    rows[1][f"videos/{CAMERA}/to_timestamp"] = 2.5  # the file holds 2.0 s
    pq.write_table(pa.Table.from_pylist(rows), path)
    problems = read_lerobot(root)[1].frames.validate(full=False)
    assert any("outside the video" in p and "episode 1" in p for p in problems)
    assert any("17 frames" in p and "12 rows" in p for p in problems)


def test_length_disagreeing_with_data_rows(datasets, tmp_path):
    root = copy(datasets, "v2.1", tmp_path)
    lines = (root / "meta/episodes.jsonl").read_text().replace('"length": 8', '"length": 9')
    (root / "meta/episodes.jsonl").write_text(lines)
    with pytest.raises(DataError, match=r"episode_000000\.parquet \(episode 0\): has 8 rows .*episodes\.jsonl line 1"):
        read_lerobot(root)


def test_bad_jsonl_line(datasets, tmp_path):
    root = copy(datasets, "v2.1", tmp_path)
    with open(root / "meta/tasks.jsonl", "a") as f:
        f.write("{oops\n")
    with pytest.raises(DataError, match=r"tasks\.jsonl line 3: not valid JSON"):
        read_lerobot(root)


def _read_in_child(episode) -> list:
    return identify(episode.read([0, len(episode) - 1]))


def test_episodes_pickle_to_worker_processes(datasets):
    ds = read_lerobot(datasets["v3.0"])
    ds[1].read([0])  # the parent has the file open: a forked child must open its own
    clone = pickle.loads(pickle.dumps(ds[1]))
    assert identify(clone.read([2])) == [(1, 2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(_read_in_child, list(ds)) == [[(k, 0), (k, n - 1)] for k, n in enumerate(LENGTHS)]


def test_image_features_read_from_parquet(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    frames = [make_frames(k, n) for k, n in enumerate((4, 5))]
    cells = []
    for episode in frames:
        for frame in episode:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="PNG")
            cells.append({"bytes": buffer.getvalue(), "path": None})
    n = len(cells)
    timestamps = pa.array([i / FPS for i in [*range(4), *range(5)]], pa.float32())
    table = pa.table({"observation.image": cells, "timestamp": timestamps,
                      "episode_index": [0] * 4 + [1] * 5, "index": list(range(n)), "task_index": [0] * n})
    with pq.ParquetWriter(root / "data/chunk-000/file-000.parquet", table.schema) as writer:
        writer.write_table(table.slice(0, 4))  # a row group per episode, as LeRobot writes them
        writer.write_table(table.slice(4))
    pq.write_table(pa.Table.from_pylist([
        {"episode_index": k, "tasks": ["stack"], "length": m, "data/chunk_index": 0, "data/file_index": 0,
         "dataset_from_index": a, "dataset_to_index": a + m} for k, (m, a) in enumerate([(4, 0), (5, 4)])]),
        root / "meta/episodes/chunk-000/file-000.parquet")
    _tasks_parquet(root / "meta/tasks.parquet", ["stack"])
    features = {"observation.image": {"dtype": "image", "shape": [H, W, 3], "names": ["height", "width", "channel"]},
                "timestamp": {"dtype": "float32", "shape": [1]}, "episode_index": {"dtype": "int64", "shape": [1]}}
    info = {"codebase_version": "v3.0", "fps": FPS, "features": features,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"}
    (root / "meta/info.json").write_text(json.dumps(info))
    ds = read_lerobot(root)
    assert [len(e) for e in ds] == [4, 5] and ds[1].text == "stack" and ds[1].actions is None
    np.testing.assert_array_equal(ds[1].read([4, 0]), frames[1][[4, 0]])  # PNG is lossless
    np.testing.assert_array_equal(ds[0].all_frames(), frames[0])
    assert ds[1].frames.validate(full=True) == []


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(frames=e["frames"][:, :31]), "even width and height"),
    (lambda e: e.update(actions=e["actions"][:-1]), "actions must be"),
    (lambda e: e.update(task=""), "task must be a non-empty string"),
    (lambda e: e.update(action=e["actions"]), "keys must be frames, task"),
    (lambda e: e.update(frames=e["frames"].astype(np.float32)), "uint8"),
])
def test_writer_rejects_bad_episodes(source, tmp_path, change, message):
    episodes = [dict(e) for e in source]
    change(episodes[1])
    with pytest.raises(DataError, match=rf"episodes\[1\]: .*{message}"):
        write_lerobot(tmp_path / "out", episodes, FPS)
    assert not (tmp_path / "out" / "meta" / "info.json").exists()


def test_writer_refuses_non_empty_folder_and_mixed_fields(source, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        write_lerobot(tmp_path / "full", source, FPS)
    mixed = [dict(e) for e in source]
    del mixed[0]["states"]
    with pytest.raises(DataError, match=r"episodes\[1\]: states has shape \(3,\) per frame but episodes\[0\] has none"):
        write_lerobot(tmp_path / "mixed", mixed, FPS)


def test_video_frames_describe_segment(datasets):
    frames = read_lerobot(datasets["v3.0"])[1].frames
    assert isinstance(frames, LeRobotVideoFrames)
    assert "[0.8000 s, 2.0000 s) (episode 1)" in frames.describe()


def test_writer_streams_a_generator_and_splits_videos_by_size(source, tmp_path):
    root = write_lerobot(tmp_path / "gen", (dict(e) for e in source), FPS, video_files_size_in_mb=1e-6,
                         chunks_size=2)
    videos = sorted(p.relative_to(root).as_posix() for p in root.glob("videos/**/*.mp4"))
    assert videos == [f"videos/{CAMERA}/chunk-000/file-000.mp4", f"videos/{CAMERA}/chunk-000/file-001.mp4",
                      f"videos/{CAMERA}/chunk-001/file-000.mp4"]
    assert len(list(root.glob("data/*/*.parquet"))) == 1
    ds = read_lerobot(root)
    assert [identify(e.read([0, len(e) - 1])) for e in ds] == [[(k, 0), (k, n - 1)] for k, n in enumerate(LENGTHS)]
    with pytest.raises(DataError, match="nothing to write"):
        write_lerobot(tmp_path / "empty", iter([]), FPS)


def test_several_missing_videos_are_counted(datasets, tmp_path):
    root = copy(datasets, "v2.1", tmp_path)
    for k in (0, 2):
        (root / f"videos/chunk-00{k // 2}/{CAMERA}/episode_00000{k}.mp4").unlink()
    with pytest.raises(DataError, match=r"episode_000000\.mp4: video file not found .*episode 0\); 1 more video"):
        read_lerobot(root)


def test_episode_rows_must_be_contiguous(datasets, tmp_path):
    root = copy(datasets, "v3.0", tmp_path)
    path = root / "data/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    order = list(range(4)) + list(range(8, 20)) + list(range(4, 8))  # episode 0's rows split in two
    pq.write_table(table.take(order), path)
    with pytest.raises(DataError, match=r"file-000\.parquet: the rows of episode 0 are not contiguous"):
        read_lerobot(root)


@pytest.mark.parametrize("codec", ["libx264", "libsvtav1"])
def test_reads_videos_concatenated_the_way_lerobot_does(source, tmp_path, codec):
    """LeRobot encodes each episode alone (AV1 by default) and joins them with ffmpeg's concat demuxer
    (stream copy); an episode's from_timestamp is the sum of the earlier episodes' durations."""
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    root = write_lerobot(tmp_path / "ds", [{"frames": e["frames"], "task": e["task"]} for e in source], FPS,
                         episodes_per_file=3)
    parts, durations = [], []
    for k, episode in enumerate(source):
        part = tmp_path / f"episode{k}.mp4"
        with av.open(str(part), "w") as container:
            stream = container.add_stream(codec, FPS, options={"g": "2", "crf": "30"})
            stream.pix_fmt, stream.width, stream.height = "yuv420p", W, H
            for frame in episode["frames"]:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        with av.open(str(part)) as container:
            stream = container.streams.video[0]
            durations.append(float(stream.duration * stream.time_base))
        parts.append(part)
    listing = tmp_path / "parts.ffconcat"
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p}'\n" for p in parts))
    joined = root / f"videos/{CAMERA}/chunk-000/file-000.mp4"
    with av.open(str(listing), format="concat", options={"safe": "0"}) as inp, av.open(str(joined), "w") as out:
        stream = out.add_stream_from_template(template=inp.streams.video[0], opaque=True)
        stream.time_base = inp.streams.video[0].time_base
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(path).to_pylist()
    starts = np.concatenate([[0.0], np.cumsum(durations)])
    for row, a, b in zip(rows, starts, starts[1:]):
        row[f"videos/{CAMERA}/from_timestamp"], row[f"videos/{CAMERA}/to_timestamp"] = float(a), float(b)
    pq.write_table(pa.Table.from_pylist(rows), path)
    for k, episode in enumerate(read_lerobot(root)):
        frames = episode.all_frames()
        assert identify(frames) == [(k, i) for i in range(LENGTHS[k])]
        assert np.abs(frames.astype(int) - source[k]["frames"]).max() <= TOLERANCE
        assert identify(episode.read([LENGTHS[k] - 1, 1])) == [(k, LENGTHS[k] - 1), (k, 1)]
        assert episode.frames.validate(full=True) == []


def test_image_stats_from_histograms_equal_the_direct_computation():
    from liv.data.lerobot_stats import image_stats, value_stats

    frames = np.random.default_rng(0).integers(0, 256, (30, 64, 80, 3), dtype=np.uint8)
    frames[..., 2] //= 3  # a channel with a different range
    fast = image_stats(frames, quantiles=True)
    direct = value_stats(frames.reshape(-1, 3).astype(np.float64) / 255, quantiles=True)
    for key in ("min", "max", "mean", "std", "q01", "q10", "q50", "q90", "q99"):
        np.testing.assert_allclose(fast[key].ravel(), direct[key], atol=1e-12, err_msg=key)
