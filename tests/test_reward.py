"""Values and rewards of frames for text, image and embedding goals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import liv
from liv.reward import embed_goals, rewards, values


@pytest.fixture(scope="module")
def model():
    return liv.create("clip-tiny", seed=0)


@pytest.fixture(scope="module")
def frames():
    return np.random.default_rng(0).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)


def test_single_text_goal_matches_similarity(model, frames):
    v = values(model, frames, "open the drawer")
    assert v.shape == (6,) and v.dtype == torch.float32
    torch.testing.assert_close(v, model.similarity(frames, "open the drawer"), atol=1e-5, rtol=0)


def test_several_goals_give_columns_in_order(model, frames):
    image_goal = frames[-1]
    emb_goal = torch.randn(model.embed_dim, generator=torch.Generator().manual_seed(3))
    goals = ["open the drawer", image_goal, "close the drawer", emb_goal]
    v = values(model, frames, goals)
    assert v.shape == (6, 4)
    for j, g in enumerate(goals):
        torch.testing.assert_close(v[:, j], model.similarity(frames, g), atol=1e-5, rtol=0)
    # The last frame is its own image goal: cosine 1 with itself.
    assert float(v[-1, 1]) == pytest.approx(1.0, abs=1e-5)


def test_frames_embedded_once_and_texts_batched(model, frames, monkeypatch):
    calls = {"images": [], "texts": []}
    enc_images, enc_texts = model.encode_images, model.encode_texts

    def count_images(x, batch_size=64):
        calls["images"].append(len(x))
        return enc_images(x, batch_size=batch_size)

    def count_texts(texts, batch_size=256, strict_text=False):
        calls["texts"].append(list(texts))
        return enc_texts(texts, batch_size=batch_size, strict_text=strict_text)

    monkeypatch.setattr(model, "encode_images", count_images)
    monkeypatch.setattr(model, "encode_texts", count_texts)
    values(model, frames, ["a", "b", "c", frames[0], frames[1]])
    assert calls["texts"] == [["a", "b", "c"]]
    assert sorted(calls["images"]) == [2, 6]  # both image goals in one call, the 6 frames in one call


def test_value_scale_and_rewards(model, frames):
    s = values(model, frames, "open the drawer")
    v = values(model, frames, "open the drawer", scale="value", gamma=0.9)
    torch.testing.assert_close(v, s * 10.0, atol=1e-5, rtol=0)
    r = rewards(model, frames, "open the drawer")
    torch.testing.assert_close(r, s[1:] - s[:-1], atol=1e-6, rtol=0)
    r2 = rewards(model, frames, ["open the drawer", frames[0]])
    assert r2.shape == (5, 2)
    # Telescoping: the rewards of an episode sum to S(last) - S(first).
    s_img = model.similarity(frames, frames[0])
    assert float(r2[:, 1].sum()) == pytest.approx(float(s_img[-1] - s_img[0]), abs=1e-5)


def test_model_methods_delegate(model, frames):
    torch.testing.assert_close(model.values(frames, ["x", "y"]), values(model, frames, ["x", "y"]))
    torch.testing.assert_close(model.rewards(frames, "x", scale="value"), rewards(model, frames, "x", scale="value"))


def test_embed_goals_array_of_goals_and_float_frames(model, frames):
    stacked = embed_goals(model, frames[:3])
    assert stacked.shape == (3, model.embed_dim)
    torch.testing.assert_close(stacked, model.encode_images(frames[:3]), atol=1e-5, rtol=0)
    as_float = values(model, frames.astype(np.float32) / 255, "x")
    torch.testing.assert_close(as_float, values(model, frames, "x"), atol=1e-5, rtol=0)


def test_bad_inputs(model, frames):
    with pytest.raises(ValueError, match="scale"):
        values(model, frames, "x", scale="logits")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no goals"):
        values(model, frames, [])
    with pytest.raises(TypeError):
        values(model, frames, [3])
    assert rewards(model, frames[:1], "x").shape == (0,)
