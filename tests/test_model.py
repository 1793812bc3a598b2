"""LIVModel's public API: creation, inference, goals, persistence and refusal of bad files."""

import json

import numpy as np
import pytest
import torch

import liv
from liv.checkpoints.native import atomic_write


@pytest.fixture(scope="module")
def model():
    return liv.create("clip-tiny", seed=0)


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).integers(0, 256, (7, 48, 80, 3), dtype=np.uint8)


def test_create_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a, b, c = liv.create("clip-tiny", seed=1), liv.create("clip-tiny", seed=1), liv.create("clip-tiny", seed=2)
    assert torch.equal(torch.rand(1), before)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.clip.text_projection, c.clip.text_projection)
    assert not a.training


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="clip-rn50"):
        liv.create("resnet-9000")


def test_encode_images_is_independent_of_chunking(model, frames):
    whole = model.encode_images(frames)
    chunked = model.encode_images(frames, batch_size=2)
    assert whole.shape == (7, model.embed_dim) and whole.dtype == torch.float32
    assert torch.allclose(whole, chunked, atol=1e-6)
    assert torch.allclose(model.encode_images(frames[3]), whole[3:4], atol=1e-6)


def test_inference_does_not_touch_batchnorm_statistics_or_mode(frames):
    model = liv.create("clip-tiny", seed=0).train()
    stats = model.clip.visual.bn1.running_mean.clone()
    model.encode_images(frames)
    assert model.training  # mode restored
    assert torch.equal(model.clip.visual.bn1.running_mean, stats)


def test_similarity_equals_cosine_of_embeddings(model, frames):
    img, txt = model.encode_images(frames), model.encode_texts(["open the drawer"])[0]
    expected = (img @ txt) / (img.norm(dim=1) * txt.norm())
    assert torch.allclose(model.similarity(frames, "open the drawer"), expected, atol=1e-6)
    # An image goal, and the same goal given as its embedding, agree.
    goal_img = frames[-1]
    by_image = model.similarity(frames, goal_img)
    by_embedding = model.similarity(frames, model.encode_images(goal_img)[0])
    assert torch.allclose(by_image, by_embedding, atol=1e-6)
    assert by_image[-1] == pytest.approx(1.0, abs=1e-5)


def test_bad_goals_are_refused(model, frames):
    with pytest.raises(ValueError, match="length"):
        model.similarity(frames, torch.zeros(model.embed_dim + 1))
    with pytest.raises(TypeError, match="goal must be"):
        model.similarity(frames, 42)


def test_similarity_with_several_goals_points_to_values(model, frames):
    goals = ["open the drawer", "close the drawer"]
    for several in (goals, tuple(goals), model.encode_texts(goals), np.stack([frames[0], frames[-1]])):
        with pytest.raises(TypeError, match=r"several goals use model\.values\(frames, goals\) -> \(N, G\)"):
            model.similarity(frames, several)
    with pytest.raises(TypeError, match="got a list of 2 goals"):
        model.similarity(frames, goals)
    # what the message recommends gives each goal's similarity as a column
    assert torch.allclose(model.values(frames, goals)[:, 1], model.similarity(frames, goals[1]), atol=1e-6)


def test_empty_inputs_give_empty_outputs(model):
    assert model.encode_images(np.zeros((0, 8, 8, 3), np.uint8)).shape == (0, model.embed_dim)
    assert model.encode_texts([]).shape == (0, model.embed_dim)


def test_forward_is_differentiable_and_matches_inference(model, frames):
    m = liv.create("clip-tiny", seed=0)
    img, txt = m(m.preprocess(frames), m.tokenize(["pick the mug"]))
    (img.sum() + txt.sum()).backward()
    assert m.clip.visual.conv1.weight.grad is not None
    assert torch.allclose(img.detach(), model.encode_images(frames), atol=1e-5)


def test_save_and_load_round_trip(tmp_path, model, frames):
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["format"] == "liv-model" and doc["preset"] == "clip-tiny"
    assert doc["clip"]["embed_dim"] == 128 and doc["preprocess"]["antialias"] is True
    loaded = liv.load(tmp_path / "m")
    assert torch.equal(loaded.encode_images(frames), model.encode_images(frames))
    assert liv.load(tmp_path / "m" / "model.safetensors").config.preset == "clip-tiny"
    assert liv.load(tmp_path / "m", antialias=False).config.antialias is False


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def crash(p):
        p.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind


def test_native_errors_name_the_file(tmp_path, model):
    model.save(tmp_path / "m")
    cfg, weights = tmp_path / "m" / "config.json", tmp_path / "m" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(liv.CheckpointError, match="corrupt or truncated") as e:
        liv.load(tmp_path / "m")
    assert str(weights) in str(e.value)
    cfg.write_text("{not json")
    with pytest.raises(liv.CheckpointError, match="not valid JSON"):
        liv.load(tmp_path / "m")
    cfg.write_text(json.dumps({"format": "liv-model", "format_version": 99}))
    with pytest.raises(liv.CheckpointError, match="newer"):
        liv.load(tmp_path / "m")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(liv.CheckpointError, match="no config.json"):
        liv.load(empty)


def test_weights_that_do_not_fit_are_named(tmp_path, model):
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    doc["clip"]["transformer_layers"] = 3
    (tmp_path / "m" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(liv.CheckpointError) as e:
        liv.load(tmp_path / "m")
    assert str(e.value) == (f"{tmp_path / 'm' / 'config.json'}: clip.transformer_layers is 3, but model.safetensors "
                            "has 2 blocks (transformer.resblocks.N)")
