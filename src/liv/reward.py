"""LIV's value and reward of frames for one or several goals.

With phi(o) the image embedding of a frame and g the embedding of a goal (a text through psi, or an
image through phi), the similarity is S(o, g) = cos(phi(o), g), the value is V = S / (1 - gamma), and
LIV's potential-based reward of a transition is R(o_t, o_t+1) = S(o_t+1, g) - S(o_t, g).

Frames are embedded once per call and scored against every goal with one matrix product, so asking for
G goals costs one pass of the image tower, not G.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Union

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from liv.model import LIVModel

Goal = Union[str, np.ndarray, torch.Tensor]
"""A text, an (H, W, 3) image (uint8, or float in [0, 1]), or a (D,) float embedding."""

Scale = Literal["similarity", "value"]


def _is_single_goal(goals: Goal | Sequence[Goal]) -> bool:
    if isinstance(goals, str):
        return True
    if isinstance(goals, (np.ndarray, torch.Tensor)):
        # (D,) embedding or (H, W, 3) image; a 2-D (G, D) or 4-D (G, H, W, 3) array holds several goals.
        return goals.ndim in (1, 3)
    return False


def _as_goal_list(goals: Goal | Sequence[Goal]) -> list[Goal]:
    if _is_single_goal(goals):
        return [goals]  # type: ignore[list-item]
    if isinstance(goals, (np.ndarray, torch.Tensor)):
        if goals.ndim not in (2, 4):
            raise ValueError("an array of goals must be (G, D) embeddings or (G, H, W, 3) images; got shape "
                             f"{tuple(goals.shape)}")
        return list(goals)
    goals = list(goals)
    if not goals:
        raise ValueError("no goals given")
    return goals


def embed_goals(model: LIVModel, goals: Goal | Sequence[Goal], strict_text: bool = False) -> torch.Tensor:
    """Embed goals -> (G, D) float32 on the model's device, unnormalised, in the order given.

    ``goals`` is one goal or a sequence of goals, each a text (str), an (H, W, 3) image (uint8 or float in
    [0, 1]) or a (D,) float embedding (used as is); a (G, D) or (G, H, W, 3) array is G goals. All texts
    go through one ``encode_texts`` call and all images of one shape through one ``encode_images`` call.
    A text longer than the model's context is cut with a ``liv.TextTruncatedWarning`` (once per text), or
    refused with ValueError when ``strict_text`` (see ``LIVModel.encode_texts``).
    """
    items = _as_goal_list(goals)
    out: list[torch.Tensor | None] = [None] * len(items)
    text_slots = [i for i, g in enumerate(items) if isinstance(g, str)]
    if text_slots:
        embedded = model.encode_texts([items[i] for i in text_slots], strict_text=strict_text)  # type: ignore[misc]
        for k, i in enumerate(text_slots):
            out[i] = embedded[k]
    images: dict[tuple, list[int]] = {}
    for i, g in enumerate(items):
        if isinstance(g, str):
            continue
        if not isinstance(g, (np.ndarray, torch.Tensor)):
            raise TypeError(f"goal {i} must be a text, an (H, W, 3) image or a (D,) embedding; got "
                            f"{type(g).__name__}")
        if g.ndim == 3:
            images.setdefault((tuple(g.shape), str(g.dtype)), []).append(i)
        else:
            out[i] = model.encode_goal(g)  # validates the (D,) embedding
    for slots in images.values():
        stack = [torch.from_numpy(np.array(items[i])) if isinstance(items[i], np.ndarray) else items[i]
                 for i in slots]
        embedded = model.encode_images(torch.stack(stack))  # type: ignore[arg-type]
        for k, i in enumerate(slots):
            out[i] = embedded[k]
    return torch.stack(out)  # type: ignore[arg-type]


def scores_from_embeddings(frame_embeddings: torch.Tensor, goal_embeddings: torch.Tensor,
                           scale: Scale = "similarity", gamma: float = 0.98) -> torch.Tensor:
    """Cosine similarity of every frame embedding with every goal embedding: (N, D), (G, D) -> (N, G).

    ``scale="value"`` divides by (1 - gamma), the value V of the LIV objective; ``"similarity"`` keeps
    S in [-1, 1]. Embeddings need not be normalised.
    """
    if scale not in ("similarity", "value"):
        raise ValueError(f"scale must be 'similarity' or 'value', got {scale!r}")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma}")
    s = F.normalize(frame_embeddings.float(), dim=-1) @ F.normalize(goal_embeddings.float(), dim=-1).T
    return s / (1.0 - gamma) if scale == "value" else s


def values(model: LIVModel, frames: np.ndarray | torch.Tensor, goals: Goal | Sequence[Goal],
           scale: Scale = "similarity", gamma: float = 0.98, batch_size: int = 64,
           strict_text: bool = False) -> torch.Tensor:
    """Similarity (or value) of each frame with each goal.

    Args:
        frames: (N, H, W, 3) RGB, uint8 or float in [0, 1] (one (H, W, 3) frame counts as N = 1).
        goals: one goal -> result (N,); a sequence of goals (or a (G, D) / (G, H, W, 3) array) ->
            result (N, G). See :func:`embed_goals`.
        scale: ``"similarity"``: S = cos(phi(o), g) in [-1, 1]; ``"value"``: S / (1 - gamma).
        gamma: discount of the value scale.
        batch_size: frames per image-tower pass.
        strict_text: raise ValueError for a text goal longer than the model's context instead of cutting
            it with a ``liv.TextTruncatedWarning`` (see ``LIVModel.encode_texts``).

    Returns a float32 tensor on the model's device. Frames are embedded once for all goals.
    """
    single = _is_single_goal(goals)
    goal_emb = embed_goals(model, goals, strict_text=strict_text)
    frame_emb = model.encode_images(frames, batch_size=batch_size)
    out = scores_from_embeddings(frame_emb, goal_emb, scale=scale, gamma=gamma)
    return out[:, 0] if single else out


def rewards(model: LIVModel, frames: np.ndarray | torch.Tensor, goals: Goal | Sequence[Goal],
            scale: Scale = "similarity", gamma: float = 0.98, batch_size: int = 64,
            strict_text: bool = False) -> torch.Tensor:
    """LIV's potential-based reward R_t = S(o_t+1) - S(o_t) of consecutive frames.

    Arguments as in :func:`values`. Returns (N-1,) for one goal or (N-1, G) for several (empty when N < 2),
    float32, in the units of ``scale`` (a ``"value"`` reward is the similarity reward / (1 - gamma)).
    """
    v = values(model, frames, goals, scale=scale, gamma=gamma, batch_size=batch_size, strict_text=strict_text)
    return v[1:] - v[:-1]
