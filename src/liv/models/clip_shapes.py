"""The tensor names and shapes of ``CLIP(config)``, computed without building the model.

Loading checks a checkpoint's tensors against its config before anything of the model's size is
allocated. Building the module on torch's meta device would give the same answer but costs about a
second on first use (it imports torch._dynamo), so the shapes are written out here; a test compares
them with ``CLIP(config).state_dict()`` so that the two cannot drift apart.
"""

from __future__ import annotations

from liv.models.clip import Bottleneck, CLIPConfig

Shapes = dict[str, tuple[int, ...]]


def _batch_norm(prefix: str, channels: int) -> Shapes:
    return {f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,), f"{prefix}.running_mean": (channels,),
            f"{prefix}.running_var": (channels,), f"{prefix}.num_batches_tracked": ()}


def _bottleneck(prefix: str, inplanes: int, planes: int, stride: int) -> Shapes:
    out = planes * Bottleneck.expansion
    shapes = {f"{prefix}.conv1.weight": (planes, inplanes, 1, 1), **_batch_norm(f"{prefix}.bn1", planes),
              f"{prefix}.conv2.weight": (planes, planes, 3, 3), **_batch_norm(f"{prefix}.bn2", planes),
              f"{prefix}.conv3.weight": (out, planes, 1, 1), **_batch_norm(f"{prefix}.bn3", out)}
    if stride > 1 or inplanes != out:
        shapes[f"{prefix}.downsample.0.weight"] = (out, inplanes, 1, 1)
        shapes.update(_batch_norm(f"{prefix}.downsample.1", out))
    return shapes


def _text_block(prefix: str, width: int) -> Shapes:
    return {f"{prefix}.attn.in_proj_weight": (3 * width, width), f"{prefix}.attn.in_proj_bias": (3 * width,),
            f"{prefix}.attn.out_proj.weight": (width, width), f"{prefix}.attn.out_proj.bias": (width,),
            f"{prefix}.ln_1.weight": (width,), f"{prefix}.ln_1.bias": (width,),
            f"{prefix}.mlp.c_fc.weight": (4 * width, width), f"{prefix}.mlp.c_fc.bias": (4 * width,),
            f"{prefix}.mlp.c_proj.weight": (width, 4 * width), f"{prefix}.mlp.c_proj.bias": (width,),
            f"{prefix}.ln_2.weight": (width,), f"{prefix}.ln_2.bias": (width,)}


def clip_tensor_shapes(config: CLIPConfig) -> Shapes:
    """Every entry of ``CLIP(config).state_dict()``: key -> shape. Allocates no tensor.

    The cost grows with the layer counts (a few dozen entries per block): callers that do not trust
    ``config`` compare its counts with the checkpoint's first.
    """
    c = config
    half, width = c.vision_width // 2, c.vision_width
    shapes: Shapes = {"visual.conv1.weight": (half, 3, 3, 3), **_batch_norm("visual.bn1", half),
                      "visual.conv2.weight": (half, half, 3, 3), **_batch_norm("visual.bn2", half),
                      "visual.conv3.weight": (width, half, 3, 3), **_batch_norm("visual.bn3", width)}
    inplanes = width
    for stage, blocks in enumerate(c.vision_layers):
        planes = width * 2**stage
        for i in range(blocks):
            shapes.update(_bottleneck(f"visual.layer{stage + 1}.{i}", inplanes, planes, 2 if stage and not i else 1))
            inplanes = planes * Bottleneck.expansion
    pool = width * 32
    shapes["visual.attnpool.positional_embedding"] = ((c.image_resolution // 32) ** 2 + 1, pool)
    for proj, out in (("k_proj", pool), ("q_proj", pool), ("v_proj", pool), ("c_proj", c.embed_dim)):
        shapes[f"visual.attnpool.{proj}.weight"] = (out, pool)
        shapes[f"visual.attnpool.{proj}.bias"] = (out,)
    for i in range(c.transformer_layers):
        shapes.update(_text_block(f"transformer.resblocks.{i}", c.transformer_width))
    shapes.update({"token_embedding.weight": (c.vocab_size, c.transformer_width),
                   "positional_embedding": (c.context_length, c.transformer_width),
                   "ln_final.weight": (c.transformer_width,), "ln_final.bias": (c.transformer_width,),
                   "text_projection": (c.transformer_width, c.embed_dim), "logit_scale": ()})
    return shapes
