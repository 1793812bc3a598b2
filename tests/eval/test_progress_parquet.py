"""`liv reward --data LEROBOT --progress-parquet`: LeRobot RA-BC's progress file, exact to the dataset's rows."""

from __future__ import annotations

import numpy as np
import pytest

import liv
from liv.cli import main
from liv.eval.progress import normalised_progress


def test_normalised_progress():
    assert normalised_progress([1.0, 3.0, 2.0]).tolist() == [0.0, 1.0, 0.5]
    assert normalised_progress([2.0, 2.0]).tolist() == [0.0, 0.0]
    assert normalised_progress([2.0]).dtype == np.float32


def test_progress_parquet_matches_a_multi_file_dataset(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from liv.data.lerobot import read_lerobot
    from liv.data.lerobot_write import write_lerobot
    from liv.reward import values

    rng = np.random.default_rng(1)
    lengths = [5, 3, 4]
    eps = [{"frames": rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), "task": t}
           for n, t in zip(lengths, ["open the drawer", "close the drawer", "open the drawer"])]
    root = write_lerobot(tmp_path / "ds", eps, fps=10, episodes_per_file=2)  # two data files
    assert len(list((root / "data").rglob("*.parquet"))) == 2
    model = tmp_path / "model"
    liv.create("clip-tiny").save(model)
    out = tmp_path / "progress.parquet"
    assert main(["reward", "--model", str(model), "--data", str(root), "--out", str(tmp_path / "r.parquet"),
                 "--progress-parquet", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names == ["index", "episode_index", "frame_index", "progress_dense"]
    assert [str(t) for t in table.schema.types] == ["int64", "int64", "int64", "float"]
    assert table.schema.metadata[b"reward_model_path"] == str(model).encode()
    data = pq.read_table(root / "data", columns=["index", "episode_index", "frame_index"]).sort_by("index")
    for name in ("index", "episode_index", "frame_index"):
        assert table.column(name).to_pylist() == data.column(name).to_pylist()
    ds = read_lerobot(root)
    v = values(liv.load(model), ds[2].all_frames(), ds[2].text).numpy().astype(np.float64)
    mine = table.column("progress_dense").to_numpy()[lengths[0] + lengths[1]:]
    assert mine == pytest.approx((v - v.min()) / (v.max() - v.min()), abs=5e-4)  # float32 values, small span
    assert mine.min() == 0.0 and mine.max() == 1.0


def test_progress_parquet_needs_a_lerobot_dataset(tmp_path, capsys):
    from liv.data.frame_folders import write_frame_folders

    manifest = write_frame_folders(tmp_path / "ff", [("open", np.zeros((2, 16, 16, 3), np.uint8))])
    code = main(["reward", "--model", "clip-tiny", "--data", str(manifest), "--out", str(tmp_path / "r.parquet"),
                 "--progress-parquet", str(tmp_path / "p.parquet")])
    assert code != 0 and "needs a LeRobot dataset" in capsys.readouterr().err
