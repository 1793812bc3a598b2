"""The CLIP architecture: OpenAI key layout, shape inference, and each block against a naive version."""

import json

import pytest
import torch
import torch.nn.functional as F

from liv.models.clip import CLIP, CLIPConfig, infer_clip_config
from liv.models.presets import PRESETS, get_preset


def test_rn50_preset_has_the_reference_keys_and_shapes(reference_fixtures):
    ref = json.loads((reference_fixtures / "rn50_checkpoint_keys.json").read_text())["keys"]
    ref = {k.removeprefix("module.model."): v for k, v in ref.items()}
    ours = {k: list(v.shape) for k, v in CLIP(get_preset("clip-rn50").config).state_dict().items()}
    assert ours == ref
    assert len(ours) == 489


def test_rn50_parameter_count_is_openai_rn50():
    model = CLIP(get_preset("clip-rn50").config)
    assert sum(p.numel() for p in model.parameters()) == 102_007_137


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_config_is_recovered_from_the_weights(name):
    config = get_preset(name).config
    assert infer_clip_config(CLIP(config).state_dict()) == config


def test_infer_refuses_non_resnet_weights():
    with pytest.raises(ValueError, match="ViT"):
        infer_clip_config({"visual.class_embedding": torch.zeros(3)})
    with pytest.raises(ValueError, match="missing"):
        infer_clip_config({"visual.layer1.0.conv1.weight": torch.zeros(1), "visual.layer2.0.x": torch.zeros(1),
                           "visual.layer3.0.x": torch.zeros(1), "visual.layer4.0.x": torch.zeros(1)})


def test_config_validation():
    with pytest.raises(ValueError, match="multiple of 32"):
        CLIPConfig(image_resolution=100)
    with pytest.raises(ValueError, match="divisible"):
        CLIPConfig(transformer_width=100, transformer_heads=3)
    with pytest.raises(ValueError, match="unknown"):
        CLIPConfig.from_dict({**CLIPConfig().to_dict(), "typo": 1})


def _tiny(seed=0):
    torch.manual_seed(seed)
    model = CLIP(get_preset("clip-tiny").config).eval()
    with torch.no_grad():  # undo zero-init of the last BN so every layer affects the output
        for name, p in model.named_parameters():
            if name.endswith("bn3.weight"):
                p.normal_()
    return model


def test_text_tower_matches_a_naive_full_length_masked_transformer():
    model = _tiny()
    c = model.config
    tokens = torch.zeros(3, c.context_length, dtype=torch.long)
    for i, n in enumerate([1, 5, 11]):
        tokens[i, 0], tokens[i, 1:n + 1], tokens[i, n + 1] = 49406, torch.arange(100, 100 + n), 49407
    # Naive: all 77 positions, torch's MultiheadAttention with an explicit causal mask.
    mask = torch.full((c.context_length, c.context_length), float("-inf")).triu(1)
    x = model.token_embedding(tokens) + model.positional_embedding
    for block in model.transformer.resblocks:
        mha = torch.nn.MultiheadAttention(c.transformer_width, c.transformer_heads, batch_first=True)
        mha.load_state_dict(block.attn.state_dict())
        h = block.ln_1(x)
        x = x + mha(h, h, h, attn_mask=mask, need_weights=False)[0]
        x = x + block.mlp(block.ln_2(x))
    x = model.ln_final(x)
    naive = x[torch.arange(3), tokens.argmax(-1)] @ model.text_projection
    with torch.no_grad():
        ours = model.encode_text(tokens)
        assert torch.allclose(ours, naive, atol=1e-5, rtol=1e-5)
        # Padding after the longest sequence does not change anything (the cut is exact).
        assert torch.allclose(model.encode_text(tokens[:, :20]), ours, atol=1e-6)


def test_attention_pool_matches_torch_multi_head_attention_forward():
    model = _tiny()
    pool = model.visual.attnpool
    feats = torch.randn(2, pool.k_proj.in_features, 2, 2)
    x = feats.flatten(2).permute(2, 0, 1)  # (HW, N, C), sequence first as torch's functional API wants
    x = torch.cat([x.mean(0, keepdim=True), x]) + pool.positional_embedding[:, None]
    expected, _ = F.multi_head_attention_forward(
        query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias, use_separate_proj_weight=True, training=False, need_weights=False)
    with torch.no_grad():
        assert torch.allclose(pool(feats), expected[0], atol=1e-5)


def test_wrong_image_size_is_a_clear_error():
    model = _tiny()
    with pytest.raises(ValueError, match="model's resolution"):
        model.encode_image(torch.zeros(1, 3, 96, 96))


def test_gradients_reach_both_towers():
    model = _tiny().train()
    img = model.encode_image(torch.randn(2, 3, 64, 64))
    txt = model.encode_text(torch.tensor([[49406, 320, 49407], [49406, 321, 49407]]))
    (img.sum() + txt.sum()).backward()
    assert model.visual.conv1.weight.grad.abs().sum() > 0
    assert model.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0


def test_gradient_checkpointing_changes_nothing_but_memory():
    plain, ckpt = _tiny(), _tiny()
    ckpt.set_grad_checkpointing(True)
    plain.train(), ckpt.train()
    pixels = torch.randn(4, 3, 64, 64)
    tokens = torch.tensor([[49406, 320, 321, 49407], [49406, 322, 49407, 0]])
    outs = []
    for model in (plain, ckpt):
        loss = model.encode_image(pixels).square().sum() + model.encode_text(tokens).square().sum()
        loss.backward()
        outs.append(loss.detach())
    assert torch.allclose(outs[0], outs[1], rtol=1e-6)
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), name
    # BatchNorm statistics moved once, not twice (the recomputation leaves them alone)
    for (name, a), b in zip(plain.named_buffers(), ckpt.buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def _bytes_saved_for_backward(model, pixels: torch.Tensor) -> int:
    """Bytes of the distinct activation storages (not parameters) the image tower keeps for backward."""
    storages, weights = {}, {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in weights:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.encode_image(pixels)
    return sum(storages.values())


def test_gradient_checkpointing_keeps_only_block_inputs():
    plain, ckpt = _tiny().train(), _tiny().train()
    ckpt.set_grad_checkpointing(True)
    pixels = torch.randn(4, 3, 64, 64)
    kept_plain, kept_ckpt = _bytes_saved_for_backward(plain, pixels), _bytes_saved_for_backward(ckpt, pixels)
    # Checkpointed: the input, the stem's output and each block's output (the next block's input) are
    # kept, with the attention pool's own tensors; not the convolutions' and BatchNorms' activations.
    assert kept_ckpt < kept_plain / 3, (kept_ckpt, kept_plain)
    x, block_inputs = pixels, [pixels]
    with torch.no_grad():
        x = ckpt.visual.stem(x)
        for block in [*ckpt.visual.layer1, *ckpt.visual.layer2, *ckpt.visual.layer3, *ckpt.visual.layer4]:
            block_inputs.append(x)
            x = block(x)
    assert kept_ckpt >= sum(t.numel() * t.element_size() for t in block_inputs)


def test_no_texts_give_no_embeddings():
    model = _tiny()
    out = model.encode_text(torch.zeros(0, 77, dtype=torch.long))
    assert out.shape == (0, model.text_projection.shape[1]) and out.dtype == torch.float32
