"""The training objective on real batches, and atomic, prunable, safely loaded checkpoints."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import liv
from liv.data.episodes import ArrayFrames, Episode
from liv.models.preprocess import normalize
from liv.objectives import FINETUNE_WEIGHTS, LIVWeights, infonce_loss, liv_loss, vip_loss
from liv.training.batches import StreamSpec, make_batch
from liv.training.checkpointing import (list_checkpoints, load_training_state, remove_partial_checkpoints,
                                        save_checkpoint, save_final_model)
from liv.training.logs import trim_logs
from liv.training.objective import SLOTS, Objective


@pytest.fixture(scope="module")
def episodes():
    rng = np.random.default_rng(0)
    return [Episode(ArrayFrames(rng.integers(0, 256, (8, 48, 48, 3), dtype=np.uint8)), f"task {i % 3}", "mem")
            for i in range(5)]


def _per_role_embeddings(model, batch):
    """Naive: embed every role's frame separately (no de-duplication)."""
    with torch.no_grad():
        return torch.stack([model.clip.encode_image(normalize(batch["pixels"][batch["slots"][:, r].clamp(min=0)]))
                            for r in range(5)], dim=1)


@pytest.mark.parametrize("context_length", [0, 77])  # 77: the loader's workers tokenize, as liv train asks
def test_liv_objective_equals_liv_loss_on_separately_encoded_frames(episodes, context_length):
    model = liv.create("clip-tiny", seed=0).eval()
    batch = make_batch(episodes, StreamSpec(64, slots=SLOTS["liv"], context_length=context_length), 0, 0, range(6))
    assert ("tokens" in batch) == bool(context_length)
    if context_length:
        assert torch.equal(batch["tokens"], model.tokenize(batch["texts"]))
    objective = Objective("liv", LIVWeights(1.0, 1.0, 1.0, 2), seed=4)
    with torch.no_grad():
        loss, metrics = objective(model, batch, step=7)
        e = _per_role_embeddings(model, batch)
        text = model.clip.encode_text(model.tokenize(batch["texts"]))
    expected, terms = liv_loss(e[:, 0], e[:, 1], e[:, 2], e[:, 3], e[:, 4], text, LIVWeights(1.0, 1.0, 1.0, 2),
                               generator=torch.Generator().manual_seed(4 * 1_000_003 + 7))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert set(metrics) == {"infonce", "vip_image", "vip_text", "loss"}
    if context_length:  # the loader's tokens are what the text tower reads, not a re-tokenization of texts
        with torch.no_grad():
            swapped, _ = objective(model, {**batch, "tokens": batch["tokens"].flip(0)}, step=7)
        assert abs(swapped.item() - loss.item()) > 1e-4


@pytest.mark.parametrize("name", ["liv", "clip"])
def test_identical_texts_of_a_batch_can_be_left_out_of_infonce(episodes, name):
    model = liv.create("clip-tiny", seed=0).eval()
    batch = make_batch(episodes, StreamSpec(64, slots=SLOTS[name]), 0, 0, range(6))
    assert len(set(batch["texts"])) < 6  # 5 episodes, 3 texts: duplicates in the batch
    same = torch.tensor([[a == b for b in batch["texts"]] for a in batch["texts"]])
    with torch.no_grad():
        _, metrics = Objective(name, FINETUNE_WEIGHTS, ignore_same_text=True)(model, batch, 0)
        _, plain = Objective(name, FINETUNE_WEIGHTS)(model, batch, 0)
        e = _per_role_embeddings(model, batch)
        text = model.clip.encode_text(model.tokenize(batch["texts"]))
    assert metrics["infonce"].item() == pytest.approx(infonce_loss(e[:, 4], text, same).item(), abs=1e-5)
    assert metrics["infonce"].item() < plain["infonce"].item() - 1e-3


@pytest.mark.parametrize("name", ["clip", "vip", "vip-i"])
def test_ablation_objectives(episodes, name):
    model = liv.create("clip-tiny", seed=0).eval()
    batch = make_batch(episodes, StreamSpec(64, slots=SLOTS[name]), 0, 0, range(6))
    with torch.no_grad():
        loss, metrics = Objective(name, FINETUNE_WEIGHTS, vip_l1=0.1 if name == "vip" else 0.0)(model, batch, 0)
        e = _per_role_embeddings(model, batch)
        if name == "clip":
            expected = infonce_loss(e[:, 4], model.clip.encode_text(model.tokenize(batch["texts"])))
        elif name == "vip":
            expected = vip_loss(e[:, 0], e[:, 2], e[:, 3], e[:, 1], similarity="neg_l2")
            expected = expected + 0.1 * e[:, :4].flatten(0, 1).norm(p=1, dim=-1).mean()
        else:
            expected = vip_loss(e[:, 0], e[:, 2], e[:, 3], e[:, 1])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert "infonce" not in metrics or name == "clip"


def _optimizer(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.clip.text_projection.sum().backward()
    opt.step()
    return opt


def test_checkpoints_are_models_and_are_pruned(tmp_path):
    model = liv.create("clip-tiny", seed=0)
    opt = _optimizer(model)
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, model, opt, {"steps": 30}, keep_last=2)
    kept = list_checkpoints(tmp_path)
    assert [p.name for p in kept] == ["step_00000020", "step_00000030"]
    loaded = liv.load(kept[-1])
    assert torch.equal(loaded.clip.text_projection, model.clip.text_projection)
    state = load_training_state(kept[-1])
    assert state["step"] == 30
    fresh = torch.optim.Adam(liv.create("clip-tiny", seed=0).parameters(), lr=1e-3)
    fresh.load_state_dict(state["optimizer"])
    ours, saved = fresh.state_dict()["state"], opt.state_dict()["state"]
    assert ours.keys() == saved.keys() and len(saved) > 0
    assert all(torch.equal(ours[i]["exp_avg"], saved[i]["exp_avg"]) for i in saved)


def test_a_partial_checkpoint_is_ignored_and_cleaned(tmp_path):
    model = liv.create("clip-tiny", seed=0)
    opt = _optimizer(model)
    save_checkpoint(tmp_path, 5, model, opt, {}, keep_last=3)
    partial = tmp_path / "checkpoints" / ".step_00000010.tmp-999"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000005"]
    assert remove_partial_checkpoints(tmp_path) == [partial] and not partial.exists()


def test_a_checkpoint_deleted_halfway_is_neither_listed_nor_left(tmp_path, monkeypatch):
    """A kill while pruning (here: deletion stops after one file) leaves a temporary, not a step_* directory
    that still has its training state but not its weights."""
    import liv.training.checkpointing as checkpointing

    model = liv.create("clip-tiny", seed=0)
    opt = _optimizer(model)
    for step in (1, 2):
        save_checkpoint(tmp_path, step, model, opt, {}, keep_last=2)

    real = checkpointing.shutil.rmtree

    def killed(path, ignore_errors=False):
        if not Path(path).exists():  # clearing a temporary before a save: nothing to kill
            return real(path, ignore_errors=ignore_errors)
        (Path(path) / "model.safetensors").unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpointing.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 3, model, opt, {}, keep_last=2)
    monkeypatch.undo()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002", "step_00000003"]
    left = remove_partial_checkpoints(tmp_path)
    assert [p.name for p in left] == [f".step_00000001.tmp-{os.getpid()}-old"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000002", "step_00000003"]


def test_the_final_model_is_saved_whole_and_a_killed_save_is_cleaned(tmp_path):
    """What a kill during the final save or a log rewrite leaves: temporaries only, which the next start
    removes; the model directory is replaced whole."""
    model = liv.create("clip-tiny", seed=0)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "stale.txt").write_text("from another save")
    assert save_final_model(tmp_path, model) == tmp_path / "model"
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert torch.equal(liv.load(tmp_path / "model").clip.text_projection, model.clip.text_projection)
    left = [tmp_path / ".model.tmp-4242", tmp_path / ".metrics.jsonl.x1y2.tmp",
            tmp_path / "model" / ".model.safetensors.abc.tmp"]
    left[0].mkdir()
    (left[0] / "model.safetensors").write_bytes(b"half")
    left[1].write_text('{"step": 1')
    left[2].write_bytes(b"half")
    assert sorted(remove_partial_checkpoints(tmp_path)) == sorted(left)
    assert not any(p.exists() for p in left) and (tmp_path / "model" / "model.safetensors").is_file()


def test_trim_logs_keeps_what_a_resume_does_not_log_again(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("".join(f'{{"step": {s}, "loss": 1}}\n' for s in (1, 2, 3, 4))
                                            + '{"step": 5, "lo')
    (tmp_path / "data_errors.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n')
    trim_logs(tmp_path, 2)
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    # a data error's step is its batch's, counted from 0: batches 0 and 1 made the first 2 steps
    assert (tmp_path / "data_errors.jsonl").read_text() == '{"step": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_errors.jsonl", "metrics.jsonl"]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_hostile_training_state_is_refused(tmp_path):
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ck = tmp_path / "checkpoints" / "step_00000001"
    ck.mkdir(parents=True)
    with open(ck / "training_state.pt", "wb") as f:
        pickle.dump({"optimizer": Evil(), "step": 1}, f)
    with pytest.raises(liv.CheckpointError, match="training_state.pt"):
        load_training_state(ck)
    assert not marker.exists()
