"""The CLIP architecture used by LIV: a ModifiedResNet image tower and a causal text transformer.

Parameter names follow OpenAI CLIP exactly (``visual.layer1.0.conv1.weight``,
``transformer.resblocks.0.attn.in_proj_weight``, ...), so OpenAI and reference-LIV weights load
without renaming. All computation is float32 unless the caller casts the module.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from liv.models.clip_config import CLIPConfig, infer_clip_config  # re-exported: defined apart, torch-free
from liv.models.devices import to_device
from liv.models.recompute import run_checkpointed


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (as OpenAI CLIP), cast back after."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return out.to(x.dtype)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the GELU approximation CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Bottleneck(nn.Module):
    """ResNet bottleneck whose stride is an average pool before the last 1x1 conv (anti-aliasing)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != out:
            # Key names "-1", "0", "1" are OpenAI's; "-1" (the pool) has no parameters.
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, out, 1, stride=1, bias=False)),
                ("1", nn.BatchNorm2d(out)),
            ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(self.avgpool(y)))
        return self.relu3(y + identity)


class AttentionPool2d(nn.Module):
    """Pools a (N, C, H, W) feature map to (N, output_dim) with one query: the mean feature."""

    def __init__(self, spatial_dim: int, embed_dim: int, num_heads: int, output_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial_dim**2 + 1, embed_dim) / embed_dim**0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        if tokens.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(
                f"attention pool expects a {math.isqrt(self.positional_embedding.shape[0] - 1)}^2 feature map "
                f"(image side = 32x that), got {h}x{w}: feed images at the model's resolution")
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        heads, head_dim = self.num_heads, c // self.num_heads
        q = self.q_proj(tokens[:, :1]).view(n, 1, heads, head_dim).transpose(1, 2)
        k = self.k_proj(tokens).view(n, -1, heads, head_dim).transpose(1, 2)
        v = self.v_proj(tokens).view(n, -1, heads, head_dim).transpose(1, 2)
        pooled = F.scaled_dot_product_attention(q, k, v)  # (N, heads, 1, head_dim)
        return self.c_proj(pooled.transpose(1, 2).reshape(n, c))


class ModifiedResNet(nn.Module):
    """CLIP's ResNet: 3-conv stem, anti-aliased strided blocks, attention pooling."""

    def __init__(self, layers: tuple[int, ...], output_dim: int, heads: int, input_resolution: int, width: int):
        super().__init__()
        self.input_resolution = input_resolution
        half = width // 2
        self.conv1 = nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(half, half, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(half, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)

        self.grad_checkpointing = False
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        self.attnpool = AttentionPool2d(input_resolution // 32, width * 32, heads, output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        modules = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        modules += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) -> (N, width, R/4, R/4): three 3x3 convolutions and an average pool."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.avgpool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) normalised pixels -> (N, output_dim) unnormalised embeddings."""
        x = x.to(self.conv1.weight.dtype)
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)  # match the weights (see liv.training.speed)
        blocks = [*self.layer1, *self.layer2, *self.layer3, *self.layer4]
        if self.grad_checkpointing and torch.is_grad_enabled():
            # One segment per bottleneck block (and the stem): a whole stage recomputed at once held
            # ~5 GB at clip-rn50 batch 32 (128 frames at 56x56) during backward (bench/README.md).
            x = run_checkpointed(self.stem, x, self.bn1, self.bn2, self.bn3)
            for block in blocks:
                x = run_checkpointed(block, x)
        else:
            x = self.stem(x)
            for block in blocks:
                x = block(x)
        return self.attnpool(x)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with nn.MultiheadAttention's parameter names.

    Causality is applied by the kernel (``is_causal``), not a stored mask, so any sequence length up to
    the context works; this is what lets the text tower stop at the longest sequence of a batch.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = (t.view(n, length, self.heads, width // self.heads).transpose(1, 2) for t in qkv.chunk(3, -1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, width))


class ResidualAttentionBlock(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn = CausalSelfAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """A stack of causal residual attention blocks over (N, L, width) batch-first sequences."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.grad_checkpointing and torch.is_grad_enabled()):
            return self.resblocks(x)
        for block in self.resblocks:
            x = run_checkpointed(block, x)
        return x


class CLIP(nn.Module):
    """Image tower ``visual`` and text tower; both map into a shared D-dimensional space."""

    def __init__(self, config: CLIPConfig):
        super().__init__()
        self.config = config
        c = config
        self.visual = ModifiedResNet(c.vision_layers, c.embed_dim, c.resolved_vision_heads, c.image_resolution,
                                     c.vision_width)
        self.transformer = Transformer(c.transformer_width, c.transformer_layers, c.transformer_heads)
        self.token_embedding = nn.Embedding(c.vocab_size, c.transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(c.context_length, c.transformer_width))
        self.ln_final = LayerNorm(c.transformer_width)
        self.text_projection = nn.Parameter(torch.empty(c.transformer_width, c.embed_dim))
        # Kept for state-dict compatibility with CLIP checkpoints; LIV never uses it.
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07), requires_grad=False)
        self.initialize_parameters()

    def initialize_parameters(self) -> None:
        """OpenAI CLIP's initialisation (zero-init of the last BN of each block, scaled projections)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        pool = self.visual.attnpool
        std = pool.c_proj.in_features**-0.5
        for proj in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
            nn.init.normal_(proj.weight, std=std)
        for stage in (self.visual.layer1, self.visual.layer2, self.visual.layer3, self.visual.layer4):
            for name, param in stage.named_parameters():
                if name.endswith("bn3.weight"):
                    nn.init.zeros_(param)
        width, layers = self.transformer.width, self.transformer.layers
        proj_std = width**-0.5 * (2 * layers) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=width**-0.5)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in the backward pass, per ResNet bottleneck block (and the stem) and per
        text block: activation memory drops to the blocks' inputs plus one block's activations, at about
        one extra forward pass of compute. Outputs, gradients and BatchNorm statistics are unchanged."""
        self.visual.grad_checkpointing = enabled
        self.transformer.grad_checkpointing = enabled

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, R, R) float normalised pixels -> (N, D) unnormalised image embeddings."""
        return self.visual(pixels)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) int64 token ids (start, text, end, zero padding) -> (N, D) unnormalised embeddings.

        The sequence is cut after the last end token of the batch: with causal attention and pooling at
        the end token, positions after it cannot change the output, so the cut only saves work. Tokens
        may be on the host (CPU) when the model is on an accelerator: they are then cut there and copied
        over asynchronously, so finding the length does not wait for the device.
        """
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (N, L), got shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.config.context_length:
            raise ValueError(f"tokens have length {tokens.shape[1]} > context {self.config.context_length}")
        device = self.token_embedding.weight.device
        if tokens.shape[0] == 0:
            return torch.empty(0, self.text_projection.shape[1], device=device, dtype=self.text_projection.dtype)
        # The end token has the largest id, so argmax finds it (OpenAI's convention).
        length = int(tokens.argmax(dim=-1).max()) + 1
        tokens = to_device(tokens[:, :length], device)
        eot = tokens.argmax(dim=-1)
        x = self.token_embedding(tokens) + self.positional_embedding[:length].to(self.token_embedding.weight.dtype)
        x = self.ln_final(self.transformer(x))
        pooled = x[torch.arange(x.shape[0], device=x.device), eot]
        return pooled @ self.text_projection


__all__ = ["CLIP", "CLIPConfig", "infer_clip_config", "ModifiedResNet", "Transformer"]
