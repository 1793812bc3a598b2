"""LIV's objectives as pure functions of embeddings: VIP, InfoNCE, and their weighted sum.

No optimizer, no device moves, no I/O. Embeddings are (B, D) float tensors; every loss is a 0-dim
tensor differentiable with respect to them. Conventions follow the reference implementation
(penn-pal-lab/LIV), which produced the released model; see ``DESIGN.md`` section 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from liv.models.devices import to_device

EPS = 1e-8
"""Added inside the log of VIP's log-mean-exp, as the reference does."""

Similarity = Literal["cosine", "neg_l2"]


def value(e_obs: torch.Tensor, e_goal: torch.Tensor, gamma: float = 0.98,
          similarity: Similarity = "cosine") -> torch.Tensor:
    """Goal-conditioned value V(o; g) per row: (B, D), (B, D) or (D,) -> (B,).

    ``cosine``: V = cos(e_obs, e_goal) / (1 - gamma), LIV's value (its range [-1/(1-gamma), 1/(1-gamma)]
    covers every return of the reward -1 per step). ``neg_l2``: V = -||e_obs - e_goal||, the original VIP
    value, without rescaling.
    """
    if similarity == "cosine":
        return F.cosine_similarity(e_obs, e_goal.expand_as(e_obs), dim=-1) / (1.0 - gamma)
    if similarity == "neg_l2":
        return -torch.linalg.vector_norm(e_obs - e_goal, dim=-1)
    raise ValueError(f"similarity must be 'cosine' or 'neg_l2', got {similarity!r}")


def _log_mean_exp_td(v_k: torch.Tensor, v_k1: torch.Tensor, gamma: float, reward: float) -> torch.Tensor:
    # The dual VIP objective's second term: log E[exp(-(r + gamma V(o_k+1) - V(o_k)))].
    return torch.log(EPS + torch.mean(torch.exp(-(reward + gamma * v_k1 - v_k))))


def vip_loss(e_0: torch.Tensor, e_k: torch.Tensor, e_k1: torch.Tensor, e_goal: torch.Tensor, gamma: float = 0.98,
             similarity: Similarity = "cosine", num_negatives: int = 0, reward: float = -1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """VIP's goal-conditioned value loss for a batch of sub-trajectories: -> 0-dim tensor.

    ``e_0``, ``e_k``, ``e_k1``: (B, D) embeddings of the first frame o_0, a frame o_k and its successor
    o_k+1; ``e_goal``: (B, D) goal embeddings (image goal frames or texts), one per sample.
    Loss = (1 - gamma) * -mean V(o_0) + log(EPS + mean exp(-(r + gamma V(o_k+1) - V(o_k)))).

    ``num_negatives = n > 0`` shuffles the (o_k, o_k+1) pairs across the batch n times (each against
    the unshuffled goals) and adds ONE more log-mean-exp term over all n * B shuffled pairs, as the
    reference code does. Permutations are drawn from ``generator`` (on the CPU) for reproducibility.
    """
    if not e_0.shape == e_k.shape == e_k1.shape:
        raise ValueError(f"e_0, e_k, e_k1 must have one shape, got {tuple(e_0.shape)}, {tuple(e_k.shape)}, "
                         f"{tuple(e_k1.shape)}")
    v_0 = value(e_0, e_goal, gamma, similarity)
    v_k = value(e_k, e_goal, gamma, similarity)
    v_k1 = value(e_k1, e_goal, gamma, similarity)
    loss = (1.0 - gamma) * -v_0.mean() + _log_mean_exp_td(v_k, v_k1, gamma, reward)
    if num_negatives > 0:
        batch = e_k.shape[0]
        # Drawn on the host (reproducible on any device) and moved in one copy that does not wait for it.
        perms = to_device(torch.stack([torch.randperm(batch, generator=generator) for _ in range(num_negatives)]),
                          e_k.device)
        v_neg = torch.cat([value(e_k[p], e_goal, gamma, similarity) for p in perms])
        v_neg_next = torch.cat([value(e_k1[p], e_goal, gamma, similarity) for p in perms])
        loss = loss + _log_mean_exp_td(v_neg, v_neg_next, gamma, reward)
    return loss


def infonce_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, same_text: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Symmetric InfoNCE between B images and their B texts over raw cosine logits: -> 0-dim tensor.

    Row i of each is a matching pair; the mean of image->text and text->image cross-entropies. The
    temperature is 1: with S = cos / (1 - gamma) this is exactly LIV's InfoNCE term (paper appendix B).
    ``same_text``: optional (B, B) bool, True where samples i and j carry the same text; those pairs
    (other than i == j) are left out of both softmaxes instead of being treated as negatives, which an
    identical text cannot be. None (the reference's behaviour) treats every other sample as a negative.
    """
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"image and text embeddings must match, got {tuple(image_emb.shape)} and "
                         f"{tuple(text_emb.shape)}")
    logits = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T
    if same_text is not None:
        eye = torch.eye(logits.shape[0], dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same_text.to(logits.device) & ~eye, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


@dataclass(frozen=True)
class LIVWeights:
    """Weights of LIV's three terms and VIP's negatives (the reference's clipweight, visionweight,
    langweight, num_negatives)."""

    infonce: float = 1.0
    """Weight of InfoNCE between text-goal frames and their texts."""
    vip_image: float = 1.0
    """Weight of VIP with image goals (the last frame)."""
    vip_text: float = 0.0
    """Weight of VIP with text goals (the paper's VIP-L; used in pre-training)."""
    num_negatives: int = 0
    """Shuffled negative pairs per VIP term (see :func:`vip_loss`)."""


FINETUNE_WEIGHTS = LIVWeights(1.0, 1.0, 0.0, 0)
"""Fine-tuning weights of the reference (Table 3: no VIP-L)."""
PRETRAIN_WEIGHTS = LIVWeights(1.0, 1.0, 1.0, 3)
"""Pre-training weights of the reference (VIP-L on, 3 negatives)."""


def liv_loss(e_0: torch.Tensor, e_goal: torch.Tensor, e_k: torch.Tensor, e_k1: torch.Tensor,
             e_text_goal_frame: torch.Tensor, e_text: torch.Tensor, weights: LIVWeights = FINETUNE_WEIGHTS,
             gamma: float = 0.98, generator: torch.Generator | None = None, same_text: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """LIV's objective: (total loss, unweighted terms). All inputs (B, D).

    total = w_infonce * InfoNCE(e_text_goal_frame, e_text) + w_vip_image * VIP(goal = e_goal)
            + w_vip_text * VIP(goal = e_text). Terms with weight 0 are not computed and not reported.
    The returned dict holds detached, unweighted terms keyed ``infonce``, ``vip_image``, ``vip_text``.
    ``same_text``: see :func:`infonce_loss`.
    """
    terms: dict[str, torch.Tensor] = {}
    total = e_0.new_zeros(())
    if weights.infonce:
        terms["infonce"] = infonce_loss(e_text_goal_frame, e_text, same_text)
        total = total + weights.infonce * terms["infonce"]
    if weights.vip_image:
        terms["vip_image"] = vip_loss(e_0, e_k, e_k1, e_goal, gamma, "cosine", weights.num_negatives,
                                      generator=generator)
        total = total + weights.vip_image * terms["vip_image"]
    if weights.vip_text:
        terms["vip_text"] = vip_loss(e_0, e_k, e_k1, e_text, gamma, "cosine", weights.num_negatives,
                                     generator=generator)
        total = total + weights.vip_text * terms["vip_text"]
    return total, {k: v.detach() for k, v in terms.items()}
