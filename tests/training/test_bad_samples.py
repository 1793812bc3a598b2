"""Unreadable samples in the middle of training: left out, replaced by a draw that is a function of the
step (so resume stays exact), logged to OUT/data_errors.jsonl, and the run stops in one clear line only
past --max-bad-samples; a DataError in a loader worker never reaches the user as a traceback."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

import liv
import liv.training.batches as batches
from liv.cli import main
from liv.data.episodes import ArrayFrames, DataError, Episode
from liv.data.frame_folders import write_frame_folders
from liv.training.bad_samples import BadSamples
from liv.training.batches import BatchStream, StreamSpec, UnreadableSamples, make_batch
from liv.training.checkpointing import list_checkpoints, load_training_state

ARGS = ["--init", "clip-tiny", "--batch-size", "4", "--log-every", "1", "--lr", "1e-3", "--no-progress",
        "--seed", "3"]


class BrokenFrames(ArrayFrames):
    """ArrayFrames whose frames in ``broken`` cannot be read."""

    def __init__(self, frames, name, broken):
        super().__init__(frames, name)
        self.broken = set(broken)

    def read(self, indices):
        hit = sorted(self.broken & set(indices))
        if hit:
            raise DataError(f"{self.describe()}/{hit[0]}.png", "cannot decode image (truncated)")
        return super().read(indices)


def _episodes(broken=()):
    rng = np.random.default_rng(0)
    return [Episode(BrokenFrames(rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8), f"ep{e}",
                                 broken if e == 1 else ()), f"task {e}", source=f"mem row {e}")
            for e in range(3)]


def test_an_unreadable_sample_is_replaced_by_a_draw_of_the_step_and_listed():
    spec, clean, broken = StreamSpec(resolution=16, augment=False), _episodes(), _episodes(broken=[2])
    good = make_batch(clean, spec, 0, 7, range(16), max_bad=16)
    a, b = (make_batch(broken, spec, 0, 7, range(16), max_bad=16) for _ in range(2))
    assert a["bad"] and a["bad"] == b["bad"] and torch.equal(a["pixels"], b["pixels"])
    replaced = {r["sample"] for r in a["bad"]}
    for r in a["bad"]:
        assert r == {"step": 7, "sample": r["sample"], "attempt": r["attempt"], "episode": "mem row 1",
                     "file": "ep1/2.png (episode mem row 1)", "frames": r["frames"],
                     "error": "cannot decode image (truncated)"} and 2 in r["frames"]
    fi_good, fi = good["frame_index"].numpy(), a["frame_index"].numpy()
    for i in range(16):
        if i in replaced:  # the replacement is another draw, not frame 2 of episode 1
            assert not (a["episode"][i] == 1 and 2 in fi[i])
        else:  # every other sample is the one a clean dataset gives
            assert a["episode"][i] == good["episode"][i] and (fi[i] == fi_good[i]).all()
    assert good["bad"] == []


def test_past_max_bad_the_batch_raises_with_every_record():
    spec, eps = StreamSpec(resolution=16, augment=False), _episodes(broken=[2])
    with pytest.raises(UnreadableSamples) as raised:
        make_batch(eps, spec, 0, 7, range(16))  # the default allows none, as before the policy
    assert str(raised.value) == "ep1/2.png (episode mem row 1): cannot decode image (truncated)"
    assert len(raised.value.records) == 1 and isinstance(raised.value, DataError)


def test_loader_workers_send_data_errors_as_data_not_tracebacks(monkeypatch):
    spec, eps = StreamSpec(resolution=16, augment=False), _episodes(broken=[2])
    stream = BatchStream(eps, spec, 0, 16, 0, 4, max_bad=0)
    got = list(DataLoader(stream, batch_size=None, num_workers=2))
    stops = [b for b in got if b.get("incomplete")]
    assert stops and all(len(b["bad"]) == 1 for b in stops)

    def failing(*args, **kwargs):
        raise DataError("x.csv line 4", "something else")

    monkeypatch.setattr(batches, "make_batch", failing)
    got = list(DataLoader(BatchStream(eps, spec, 0, 16, 0, 4), batch_size=None, num_workers=2))
    assert got == [{"step": 0, "error": "x.csv line 4: something else"},
                   {"step": 1, "error": "x.csv line 4: something else"}]


def test_the_count_warns_once_per_file_and_stops_past_the_limit():
    logged, said = [], []
    rec = {"step": 1, "sample": 0, "file": "a.png", "error": "bad"}
    bad = BadSamples(3, 1, logged.extend, said.append, lambda: "RUN/data_errors.jsonl")
    assert bad.add({"step": 1, "bad": [rec, {**rec, "sample": 1}]}, exchange=False) is None
    assert bad.count == 3 and len(logged) == 2 and len(said) == 1
    assert "step 1: a.png: bad; left the sample out and drew another" in said[0]
    why = bad.add({"step": 2, "bad": [{**rec, "step": 2, "file": "b.png"}]}, exchange=False)
    assert len(said) == 1  # stopping: the error says it, no "drew another"
    assert why == ("step 2: 4 samples could not be read, more than --max-bad-samples 3; training stopped. The "
                   "last: b.png: bad. All are in RUN/data_errors.jsonl.")


def _png_bytes(frame):
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    """4 episodes of 5 frames: episode 1's frame 2 is a truncated PNG, episode 2's frame 3 is 20x20 px
    (the others 32x24). The data check decodes first and last frames only, so training meets them."""
    root = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    write_frame_folders(root, [(t, rng.integers(0, 256, (5, 24, 32, 3), dtype=np.uint8))
                               for t in ("open the drawer", "close the drawer") * 2])
    corrupt = root / "episode_000001" / "2.png"
    corrupt.write_bytes(corrupt.read_bytes()[:200])
    (root / "episode_000002" / "3.png").write_bytes(_png_bytes(np.zeros((20, 20, 3), np.uint8)))
    return root


def _losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def test_bad_frames_are_left_out_logged_and_resume_stays_exact(bad_data, tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    common = ["--data", str(bad_data), "--save-every", "4", "--num-workers", "2", *ARGS]
    assert main(["train", "--out", str(whole), "--steps", "8", *common]) == 0
    out = capsys.readouterr().out
    errors = [json.loads(line) for line in (whole / "data_errors.jsonl").read_text().splitlines()]
    files = {r["file"] for r in errors}
    corrupt = f"{bad_data / 'episode_000001' / '2.png'} (episode {bad_data / 'manifest.csv'} line 3)"
    assert corrupt in files and any(f.startswith(str(bad_data / "episode_000002")) for f in files)
    assert all(r["error"].startswith("cannot decode image") for r in errors if r["file"] == corrupt)
    assert any("frame 3 is 20x20 px" in r["error"] for r in errors)
    steps = [r["step"] for r in errors]
    assert steps == sorted(steps) and min(steps) < 4 <= max(steps)  # before and after the resume point
    assert f"liv train: warning: step {errors[0]['step']}: {errors[0]['file']}: " in out
    assert f"liv train: {len(errors)} unreadable sample(s) left out and replaced" in out

    assert main(["train", "--out", str(parts), "--steps", "4", *common]) == 0
    assert load_training_state(list_checkpoints(parts)[-1])["bad_samples"] == sum(s < 4 for s in steps)
    assert main(["train", "--out", str(parts), "--steps", "8", "--resume", *common]) == 0
    assert (parts / "data_errors.jsonl").read_text() == (whole / "data_errors.jsonl").read_text()
    expected, got = _losses(whole), _losses(parts)
    assert sorted(got) == list(range(1, 9))
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-6), step
    a, b = liv.load(whole / "model"), liv.load(parts / "model")
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.clip.state_dict().values(),
                                                                b.clip.state_dict().values()))


def test_max_bad_samples_0_stops_at_the_first_in_one_clean_line(bad_data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(bad_data), "--out", str(run), "--steps", "8", "--num-workers", "2",
                 "--max-bad-samples", "0", *ARGS]) == 3
    out, err = capsys.readouterr()
    assert "drew another" not in out
    assert err.count("\n") == 1 and "Traceback" not in err and "DataLoader worker" not in err, err
    first = json.loads((run / "data_errors.jsonl").read_text().splitlines()[0])
    assert err.startswith(f"liv train: error: step {first['step']}: {first['file']}: {first['error']}; training "
                          "stopped at this first unreadable sample (--max-bad-samples 0). Last good checkpoint: none")


def test_past_the_limit_the_run_stops_keeping_its_checkpoint_and_a_higher_limit_resumes(bad_data, tmp_path, capsys):
    run = tmp_path / "run"
    common = ["--data", str(bad_data), "--out", str(run), "--steps", "8", "--save-every", "1", "--num-workers", "0",
              *ARGS]
    assert main(["train", *common, "--max-bad-samples", "3"]) == 3
    err = capsys.readouterr().err
    kept = list_checkpoints(run)
    assert kept and "samples could not be read, more than --max-bad-samples 3" in err
    assert f"Last good checkpoint: {kept[-1]} (fix or remove the files" in err and "Traceback" not in err
    assert load_training_state(kept[-1])["bad_samples"] <= 3
    assert main(["train", *common, "--max-bad-samples", "100", "--resume"]) == 0
    assert len((run / "data_errors.jsonl").read_text().splitlines()) > 3
