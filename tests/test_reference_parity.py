"""liv reproduces the reference LIV implementation's outputs on its own checkpoint files.

Tolerances are measured (2026-11, CPU fp32): 224 px images and texts agree to ~3e-7 relative; 240x320
frames agree to ~2.5e-7 with the reference's resize (no antialias, the default for imported files), and
differ by ~4.5e-4 on pixel noise (2.5e-7 on smooth images) when antialiasing is switched on.
"""

import json

import numpy as np
import pytest
import torch

import liv


def _rel_err(ours: torch.Tensor, ref: np.ndarray) -> float:
    ref_t = torch.from_numpy(ref)
    return float(((ours.cpu() - ref_t).norm(dim=-1) / ref_t.norm(dim=-1)).max())


@pytest.fixture(scope="module")
def arrays(reference_fixtures):
    return dict(np.load(reference_fixtures / "arrays.npz"))


@pytest.fixture(scope="module")
def release(reference_fixtures):
    return liv.load(reference_fixtures / "checkpoint_liv.pt")


def test_release_checkpoint_is_recognised(release):
    assert release.config.provenance["source_format"] == "liv-release"
    assert release.config.antialias is False
    assert release.embed_dim == 64 and release.image_resolution == 224


def test_image_embeddings_224(release, arrays):
    assert _rel_err(release.encode_images(arrays["images_224_uint8"]), arrays["image_embeddings_224"]) < 1e-5


@pytest.mark.filterwarnings("ignore::liv.TextTruncatedWarning")  # the last sentence is over-long: cut as CLIP cuts
def test_text_embeddings(release, arrays, reference_fixtures):
    sentences = json.loads((reference_fixtures / "meta.json").read_text())["sentences"]
    assert torch.equal(release.tokenize(sentences).cpu(), torch.from_numpy(arrays["tokens"]))
    assert _rel_err(release.encode_texts(sentences), arrays["text_embeddings"]) < 1e-5


@pytest.mark.parametrize("name", ["240x320", "smooth_240x320"])
def test_resized_frames_match_with_the_reference_resize(release, arrays, name):
    emb = release.encode_images(arrays[f"images_{name}_uint8"])
    assert _rel_err(emb, arrays[f"image_embeddings_{name}"]) < 1e-5


def test_antialiased_resize_differs_only_on_fine_detail(reference_fixtures, arrays):
    model = liv.load(reference_fixtures / "checkpoint_liv.pt", antialias=True)
    noise = _rel_err(model.encode_images(arrays["images_240x320_uint8"]), arrays["image_embeddings_240x320"])
    smooth = _rel_err(model.encode_images(arrays["images_smooth_240x320_uint8"]),
                      arrays["image_embeddings_smooth_240x320"])
    assert 1e-5 < noise < 5e-3
    assert smooth < 1e-5


def test_similarity_matrix(release, arrays, reference_fixtures):
    sentences = json.loads((reference_fixtures / "meta.json").read_text())["sentences"][:4]
    sims = torch.stack([release.similarity(arrays["images_224_uint8"], s) for s in sentences], dim=1)
    assert torch.allclose(sims, torch.from_numpy(arrays["sim_image224_text"]), atol=1e-6)


def test_snapshot_loads_with_its_step(reference_fixtures, release):
    snap = liv.load(reference_fixtures / "checkpoint_snapshot.pt")
    assert snap.config.provenance["source_format"] == "liv-snapshot"
    assert snap.config.provenance["global_step"] == 1
    diffs = [(a - b).abs().max().item() for a, b in zip(snap.parameters(), release.parameters())]
    assert 0 < max(diffs) < 1e-3


def _round_like_openai_build_model(model: liv.LIVModel) -> None:
    """OpenAI's build_model casts conv/linear/attention weights and projections to fp16 (the reference
    then casts back to fp32 on CPU); BatchNorm, LayerNorm and embeddings stay fp32."""
    with torch.no_grad():
        for name, p in model.clip.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            owner = model.clip.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model.clip
            if (isinstance(owner, (torch.nn.Conv2d, torch.nn.Linear)) or leaf.startswith("in_proj")
                    or leaf in ("text_projection", "proj")):
                p.copy_(p.half().float())


def test_openai_torchscript_archive_gives_the_reference_model(reference_fixtures, arrays, release):
    model = liv.load(reference_fixtures / "clip_openai.jit.pt")
    assert model.config.provenance["source_format"] == "openai-torchscript"
    _round_like_openai_build_model(model)
    for (k, a), b in zip(model.clip.state_dict().items(), release.clip.state_dict().values()):
        assert torch.equal(a, b), k
    assert _rel_err(model.encode_images(arrays["images_224_uint8"]), arrays["image_embeddings_224"]) < 1e-5
