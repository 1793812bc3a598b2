"""Training objectives behind one contract: ``loss, metrics = objective(model, batch, step)``.

The model is called once per step (both towers in one ``forward``, as DDP requires). Embeddings of
every process are gathered so that the loss is computed on the GLOBAL batch, as the reference computed
it on one device: InfoNCE and VIP's log-mean-exp do not decompose over shards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from liv.models.devices import to_device
from liv.models.preprocess import normalize
from liv.models.tokenizer import tokenize
from liv.objectives import LIVWeights, infonce_loss, liv_loss, vip_loss

SLOTS = {"liv": (0, 1, 2, 3, 4), "vip": (0, 1, 2, 3), "vip-i": (0, 1, 2, 3), "clip": (4,)}
"""Frame roles each objective needs, of [o_0, o_goal, o_k, o_k+1, o_text_goal]."""


def gather_global(x: torch.Tensor) -> torch.Tensor:
    """Concatenate (B_local, ...) tensors of all processes in rank order -> (B_global, ...).

    Only this process's slice carries gradient; :class:`Objective` scales the loss by the world size so
    that DDP's gradient average yields the gradient of the global-batch loss.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts)


@dataclass(frozen=True)
class Objective:
    """A named objective with its weights. ``name``: liv, vip, vip-i or clip (see TrainConfig);
    ``ignore_same_text``: leave pairs with identical texts out of InfoNCE (see liv.objectives.infonce_loss)."""

    name: str
    weights: LIVWeights
    gamma: float = 0.98
    vip_l1: float = 0.0
    vip_l2: float = 0.0
    seed: int = 0
    ignore_same_text: bool = False

    def __post_init__(self) -> None:
        if self.name not in SLOTS:
            raise ValueError(f"unknown objective {self.name!r}; choose one of {sorted(SLOTS)}")

    @property
    def slots(self) -> tuple[int, ...]:
        """Frame roles the batches must contain."""
        return SLOTS[self.name]

    @property
    def uses_text(self) -> bool:
        """Whether the text tower takes part (not for vip and vip-i, whose text tower is frozen)."""
        return self.name in ("liv", "clip")

    def __call__(self, model: nn.Module, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss to backpropagate (0-dim) and detached metrics of the global batch.

        ``model`` is a LIVModel, possibly wrapped in DistributedDataParallel; ``batch`` comes from
        liv.training.batches.make_batch.
        """
        core = model.module if hasattr(model, "module") else model
        device = core.device
        pixels = normalize(to_device(batch["pixels"], device))
        # Tokens stay on the host (made by the loader's workers when the stream spec asks): the text
        # tower cuts them to the batch's longest there, without a device sync.
        tokens = None
        if self.uses_text:
            tokens = batch.get("tokens")
            if tokens is None:
                tokens = tokenize(batch["texts"], core.config.clip.context_length, truncate="warn")
        image, text = model(pixels, tokens)
        slots = to_device(batch["slots"], device).clamp(min=0)  # roles not drawn: frame 0, never read
        per_slot = gather_global(image[slots])  # (B, 5, D)
        text = gather_global(text) if text is not None else None
        same_text = None
        if self.ignore_same_text and tokens is not None:
            all_tokens = gather_global(to_device(tokens, device))
            same_text = (all_tokens[:, None] == all_tokens[None]).all(-1)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        e_0, e_goal, e_k, e_k1, e_tg = per_slot.unbind(1)
        metrics: dict[str, torch.Tensor] = {}
        if self.name in ("liv", "vip-i"):
            weights = self.weights if self.name == "liv" else LIVWeights(0.0, 1.0, 0.0, self.weights.num_negatives)
            loss, metrics = liv_loss(e_0, e_goal, e_k, e_k1, e_tg, text, weights, self.gamma, generator, same_text)
        elif self.name == "clip":
            loss = infonce_loss(e_tg, text, same_text)
            metrics["infonce"] = loss.detach()
        else:  # vip: the original VIP value -||phi(o) - phi(g)|| with embedding penalties
            loss = vip_loss(e_0, e_k, e_k1, e_goal, self.gamma, "neg_l2", self.weights.num_negatives,
                            generator=generator)
            metrics["vip_image"] = loss.detach()
            if self.vip_l1 or self.vip_l2:
                used = per_slot[:, :4].flatten(0, 1)
                penalty = (self.vip_l1 * used.norm(p=1, dim=-1).mean() + self.vip_l2 * used.norm(dim=-1).mean())
                metrics["embedding_penalty"] = penalty.detach()
                loss = loss + penalty
        metrics["loss"] = loss.detach()
        world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        return loss * world, metrics
