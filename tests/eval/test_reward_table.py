"""`liv reward --data`'s parquet table says where each episode came from: its source file, the manifest and
line that list it, and (LeRobot) its episode_index. Every episode's frames are different random images, and
each row's values are checked against the frames read back from the file its `source` names, so an episode
given another's origin fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pq = pytest.importorskip("pyarrow.parquet")
av = pytest.importorskip("av")

import liv  # noqa: E402
from liv.cli import main  # noqa: E402
from liv.data.frame_folders import write_frame_folders  # noqa: E402
from liv.data.lerobot import write_lerobot  # noqa: E402
from liv.data.video_write import write_video  # noqa: E402
from liv.eval.reward_table import REWARD_COLUMNS  # noqa: E402

TEXTS = ("open the drawer", "close the drawer", "push the button")
LENGTHS = (4, 3, 5)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model"
    liv.create("clip-tiny", seed=0).save(path)
    return path


def episodes() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [(t, rng.integers(0, 256, (n, 32, 48, 3), dtype=np.uint8)) for t, n in zip(TEXTS, LENGTHS)]


def score(model_dir: Path, data: Path, out: Path) -> dict[str, list]:
    assert main(["reward", "--model", str(model_dir), "--data", str(data), "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == list(REWARD_COLUMNS)
    assert [str(table.schema.field(c).type) for c in REWARD_COLUMNS] == [
        "int64", "string", "int64", "string", "double", "double", "string", "string", "int64", "int64"]
    return table.to_pydict()


def by_episode(t: dict[str, list]) -> dict[int, dict[str, object]]:
    """Episode -> its origin columns (one value each: checked) and its own-text values in frame order."""
    out = {}
    for e in sorted(set(t["episode"])):
        rows = [i for i, x in enumerate(t["episode"]) if x == e and t["goal"][i] == t["task"][i]]
        origin = {c: {t[c][i] for i in range(len(t["episode"])) if t["episode"][i] == e}
                  for c in ("task", "source", "manifest", "manifest_line", "episode_index")}
        assert all(len(v) == 1 for v in origin.values()), origin  # constant over the episode's rows
        out[e] = {**{c: v.pop() for c, v in origin.items()}, "values": np.array([t["value"][i] for i in rows])}
    return out


def check_values(model_dir: Path, got: dict, frames: np.ndarray) -> None:
    expected = liv.load(model_dir).similarity(frames, got["task"]).double().numpy()
    np.testing.assert_allclose(got["values"], expected, atol=1e-5, rtol=0)


def decode(path: str) -> np.ndarray:
    with av.open(path) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_frame_folders_name_their_folder_and_manifest_line(model_dir, tmp_path):
    root = tmp_path / "frames"
    write_frame_folders(root, episodes())
    manifest = root / "manifest.csv"
    # Listed out of order, with a text quoted over two lines and a blank line: line numbers are not row + 1.
    manifest.write_text('directory,num_frames,text\nepisode_000002,5,"push the\nbutton"\n\n'
                        "episode_000000,4,open the drawer\nepisode_000001,3,close the drawer\n", encoding="utf-8")
    got = by_episode(score(model_dir, root, tmp_path / "v.parquet"))
    lines = manifest.read_text(encoding="utf-8").split("\n")
    assert [(g["source"], g["manifest"], g["manifest_line"], g["episode_index"]) for g in got.values()] == [
        (str(root / "episode_000002"), str(manifest), 2, None), (str(root / "episode_000000"), str(manifest), 5, None),
        (str(root / "episode_000001"), str(manifest), 6, None)]
    for g in got.values():
        assert lines[g["manifest_line"] - 1].startswith(Path(g["source"]).name + ",")  # the editor's line
        names = sorted(Path(g["source"]).iterdir(), key=lambda p: int(p.stem))
        check_values(model_dir, g, np.stack([np.asarray(Image.open(p).convert("RGB")) for p in names]))
    assert got[0]["task"] == "push the\nbutton"


def test_video_files_name_their_file(model_dir, tmp_path):
    for k, (_, frames) in enumerate(episodes()):
        write_video(tmp_path / f"clip{k}.mp4", frames, fps=10)
    (tmp_path / "manifest.csv").write_text("path,text\nclip2.mp4,c\nclip0.mp4,a\nclip1.mp4,b\n", encoding="utf-8")
    got = by_episode(score(model_dir, tmp_path, tmp_path / "v.parquet"))
    assert [(Path(g["source"]).name, g["manifest_line"], g["task"]) for g in got.values()] == [
        ("clip2.mp4", 2, "c"), ("clip0.mp4", 3, "a"), ("clip1.mp4", 4, "b")]
    for g in got.values():
        check_values(model_dir, g, decode(g["source"]))


@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_episodes_name_their_video_and_episode_index(model_dir, tmp_path, version):
    eps = episodes()
    root = write_lerobot(tmp_path / "ds", [{"frames": f, "task": t} for t, f in eps], fps=10, version=version,
                         lossless=True, episodes_per_file=1 if version == "v3.0" else None)
    got = by_episode(score(model_dir, root, tmp_path / "v.parquet"))
    assert [g["episode_index"] for g in got.values()] == [0, 1, 2]
    for e, g in got.items():
        # "<video> (episode E)", v3.0 with the episode's span of the file: "<video> [0.0000 s, 0.4000 s) (episode E)"
        path, span = re.fullmatch(rf"(.*\.mp4)( \[0\.0000 s, {LENGTHS[e] / 10:.4f} s\))? \(episode {e}\)",
                                  g["source"]).groups()
        assert Path(path).is_file() and (span is None) == (version == "v2.1")
        frames = decode(path)
        assert len(frames) == LENGTHS[e]  # one file per episode here: the whole file is this episode
        np.testing.assert_array_equal(frames, eps[e][1])  # lossless: the file holds exactly this episode's frames
        check_values(model_dir, g, frames)
        if version == "v2.1":  # a JSON-lines file: its line lists this episode
            assert g["manifest"] == str(root / "meta" / "episodes.jsonl")
            line = Path(g["manifest"]).read_text().split("\n")[g["manifest_line"] - 1]
            assert json.loads(line)["episode_index"] == e
        else:  # a parquet table has rows, not lines
            assert Path(g["manifest"]).suffix == ".parquet" and g["manifest_line"] is None
