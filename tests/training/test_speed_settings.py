"""Speed settings change how, not what, the model computes: channels-last and torch.compile."""

import numpy as np
import pytest
import torch

import liv
from liv.objectives import FINETUNE_WEIGHTS
from liv.training.objective import Objective
from liv.training.speed import compile_towers, prepare_for_training

FRAMES = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
TEXTS = ["open the drawer", "press the big red button twice"]


def _pair():
    plain = liv.create("clip-tiny", seed=3).eval()
    other = liv.create("clip-tiny", seed=3).eval()
    return plain, other


def test_channels_last_gives_the_same_embeddings_and_contiguous_saved_weights(tmp_path):
    plain, fast = _pair()
    prepare_for_training(fast)
    assert fast.clip.visual.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(plain.encode_images(FRAMES), fast.encode_images(FRAMES), atol=1e-5)
    fast.save(tmp_path / "m")
    again = liv.load(tmp_path / "m")
    assert again.clip.visual.conv1.weight.is_contiguous()
    assert torch.allclose(plain.encode_images(FRAMES), again.encode_images(FRAMES), atol=1e-5)


@pytest.mark.slow  # compiling the towers takes about a minute on 2 CPU cores
def test_compiled_towers_keep_parameter_names_and_outputs(tmp_path):
    plain, compiled = _pair()
    compile_towers(compiled)
    assert list(plain.state_dict()) == list(compiled.state_dict())
    assert torch.allclose(plain.encode_images(FRAMES), compiled.encode_images(FRAMES), atol=1e-5)
    assert torch.allclose(plain.encode_texts(TEXTS), compiled.encode_texts(TEXTS), atol=1e-5)
    compiled.save(tmp_path / "m")
    assert torch.allclose(plain.encode_texts(TEXTS), liv.load(tmp_path / "m").encode_texts(TEXTS), atol=1e-5)


def _batch(size: int, resolution: int) -> dict:
    """A fine-tuning batch: 4 distinct frames per sample (goal and text goal share one)."""
    slots = torch.tensor([[4 * b, 4 * b + 3, 4 * b + 1, 4 * b + 2, 4 * b + 3] for b in range(size)])
    return {"pixels": torch.rand(4 * size, 3, resolution, resolution, generator=torch.Generator().manual_seed(0)),
            "slots": slots, "texts": [TEXTS[b % 2] for b in range(size)]}


@pytest.mark.slow  # two compilations (forward and backward): about two minutes on 2 CPU cores
def test_a_compiled_checkpointed_training_step_matches_eager():
    eager, fast = _pair()
    for model in (eager, fast):
        prepare_for_training(model)
        model.train()
    fast.clip.set_grad_checkpointing(True)
    compile_towers(fast)
    objective, batch = Objective("liv", FINETUNE_WEIGHTS), _batch(6, 64)
    losses = []
    for model in (eager, fast):
        loss, _ = objective(model, batch, 0)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for (name, a), b in zip(eager.named_parameters(), fast.parameters()):
        if a.grad is not None and a.grad.norm() > 1e-3:  # smaller ones are rounding noise around 0
            assert (a.grad - b.grad).norm() <= 1e-3 * a.grad.norm(), name
    # BatchNorm running statistics moved once, as in eager (the recomputation leaves them alone)
    for (name, a), b in zip(eager.named_buffers(), fast.buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name
