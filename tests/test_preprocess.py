"""Preprocessing: input contract, torchvision-compatible geometry, normalisation."""

import numpy as np
import pytest
import torch

from liv.models.preprocess import CLIP_MEAN, CLIP_STD, as_frame_tensor, preprocess, resized_shape


def test_resized_shape_truncates_the_long_side_like_torchvision():
    assert resized_shape(240, 320, 224) == (224, 298)  # 298.67 -> 298
    assert resized_shape(320, 240, 224) == (298, 224)
    assert resized_shape(224, 224, 224) == (224, 224)
    assert resized_shape(480, 640, 64) == (64, 85)


def test_centre_crop_takes_the_middle():
    # Columns carry their index, so the crop offset is readable from the output.
    cols = np.tile(np.arange(100, dtype=np.uint8), (64, 1))
    frames = np.repeat(cols[None, :, :, None], 3, axis=-1)  # (1, 64, 100, 3): no resize at 64
    out = preprocess(frames, 64)
    recovered = (out[0, 0] * CLIP_STD[0] + CLIP_MEAN[0]) * 255
    assert out.shape == (1, 3, 64, 64)
    assert torch.allclose(recovered[0], torch.arange(18, 82, dtype=torch.float32), atol=1e-3)  # (100-64)/2 = 18


def test_uint8_and_float_inputs_agree():
    g = np.random.default_rng(0)
    frames = g.integers(0, 256, (3, 50, 70, 3), dtype=np.uint8)
    a = preprocess(frames, 32)
    b = preprocess(frames.astype(np.float32) / 255, 32)
    c = preprocess(torch.from_numpy(frames.astype(np.float64) / 255), 32)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)
    assert a.dtype == torch.float32


def test_mean_colour_normalises_to_zero_and_std_to_one():
    mean_img = torch.tensor(CLIP_MEAN).expand(1, 32, 32, 3).contiguous()
    assert preprocess(mean_img, 32).abs().max() < 1e-6
    shifted = (torch.tensor(CLIP_MEAN) + torch.tensor(CLIP_STD)).expand(1, 32, 32, 3).contiguous()
    assert torch.allclose(preprocess(shifted, 32), torch.ones(1, 3, 32, 32), atol=1e-5)


def test_single_frame_gets_a_batch_dimension():
    assert preprocess(np.zeros((40, 40, 3), np.uint8), 32).shape == (1, 3, 32, 32)


def test_antialias_only_matters_when_shrinking_detail():
    g = np.random.default_rng(1)
    noise = g.integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)
    diff = (preprocess(noise, 32, antialias=True) - preprocess(noise, 32, antialias=False)).abs().max()
    assert diff > 0.1
    same = preprocess(noise[:, :32, :32], 32, antialias=True) - preprocess(noise[:, :32, :32], 32, antialias=False)
    assert same.abs().max() == 0


@pytest.mark.parametrize("bad, err, words", [
    (np.zeros((2, 8, 8), np.uint8), ValueError, "(N, H, W, 3)"),
    (np.zeros((2, 3, 8, 8), np.uint8), ValueError, "channels last"),
    (np.zeros((2, 8, 8, 3), np.int32), TypeError, "uint8"),
    (np.full((1, 8, 8, 3), 255.0, np.float32), ValueError, "[0, 1]"),
    (np.full((1, 8, 8, 3), -0.5, np.float32), ValueError, "[0, 1]"),
    ([[1, 2, 3]], TypeError, "numpy array or torch tensor"),
])
def test_bad_input_is_refused_with_a_clear_message(bad, err, words):
    with pytest.raises(err, match=None) as info:
        as_frame_tensor(bad)
    assert words in str(info.value)
