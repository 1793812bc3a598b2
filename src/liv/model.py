"""`LIVModel`: a CLIP model plus its preprocessing and tokenizer, with the LIV inference API."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from liv.models.clip import CLIP, CLIPConfig
from liv.models.preprocess import as_frame_tensor, preprocess
from liv.models.tokenizer import tokenize


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and reproduce its outputs, saved as ``config.json``."""

    clip: CLIPConfig
    """Architecture hyper-parameters."""
    preset: str | None = None
    """Name of the preset the architecture came from, if any (informational)."""
    antialias: bool = True
    """Low-pass filter when shrinking frames. The reference LIV resized without it; imported reference
    and OpenAI checkpoints default to False so that they reproduce the reference's numbers."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where the weights came from: source file and format, training run, step, ... (free-form JSON)."""



class LIVModel(nn.Module):
    """Image encoder phi and text encoder psi of LIV, with preprocessing and tokenisation built in.

    ``encode_images``, ``encode_texts`` and ``similarity`` are the inference API: they run without
    autograd, in eval mode (BatchNorm on running statistics; the previous mode is restored), in chunks.
    ``forward`` is the differentiable path used for training.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.clip = CLIP(config.clip)
        self.source_format: str | None = None
        """Format of the file :func:`liv.load` read the model from (``liv-model``, ``liv-release``, ...: see
        ``liv.checkpoints.formats``); None for a model made in this process. Not saved."""

    # ----------------------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
        return next(self.parameters()).device

    @property
    def embed_dim(self) -> int:
        """Dimension D of image and text embeddings."""
        return self.config.clip.embed_dim

    @property
    def image_resolution(self) -> int:
        """Side in pixels of the square crop the image tower sees."""
        return self.config.clip.image_resolution

    def num_parameters(self) -> int:
        """Total number of parameters (both towers, ``logit_scale`` included)."""
        return sum(p.numel() for p in self.parameters())

    # ----------------------------------------------------------------------------- differentiable path
    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 or float-in-[0, 1] frames -> (N, 3, R, R) float32 normalised pixels on the
        model's device (R = ``image_resolution``)."""
        return preprocess(frames, self.image_resolution, antialias=self.config.antialias, device=self.device)

    def tokenize(self, texts: str | Sequence[str], strict_text: bool = False) -> torch.Tensor:
        """Texts -> (N, context_length) int64 token ids on the model's device.

        A text longer than the context is cut to fit, with a :class:`liv.TextTruncatedWarning` the first
        time that text is seen; with ``strict_text`` it raises ValueError instead (naming the text and
        its token count).
        """
        return self._host_tokens(texts, strict_text).to(self.device)

    def _host_tokens(self, texts: str | Sequence[str], strict_text: bool) -> torch.Tensor:
        # The one place where inference decides about over-long texts: every text-embedding path
        # (encode_texts, goals, values, rewards, the CLI, the Gymnasium wrappers) comes through here.
        return tokenize(texts, context_length=self.config.clip.context_length,
                        truncate=False if strict_text else "warn")

    def forward(self, pixels: torch.Tensor | None = None, tokens: torch.Tensor | None = None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Differentiable embeddings: (N, 3, R, R) pixels -> (N, D); (M, L) tokens -> (M, D).

        Either input may be None (its output is then None). One call per step keeps DDP's
        gradient synchronisation correct when both towers train.
        """
        image = self.clip.encode_image(pixels) if pixels is not None else None
        text = self.clip.encode_text(tokens) if tokens is not None else None
        return image, text

    # ----------------------------------------------------------------------------- inference API
    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            # no_grad rather than inference_mode: embeddings feed policy training, which saves its
            # inputs for backward (inference tensors cannot be saved).
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def encode_images(self, frames: np.ndarray | torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Embed frames: (N, H, W, 3) (or one (H, W, 3)) uint8 / float-in-[0, 1] RGB -> (N, D) float32.

        Unnormalised, like the reference. Frames are preprocessed and encoded ``batch_size`` at a time so
        that long videos do not exhaust memory; the result is on the model's device.
        """
        frames = as_frame_tensor(frames)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        with self._inference():
            chunks = [self.clip.encode_image(self.preprocess(frames[i:i + batch_size]))
                      for i in range(0, frames.shape[0], batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.embed_dim, device=self.device)

    def encode_texts(self, texts: str | Sequence[str], batch_size: int = 256, strict_text: bool = False
                     ) -> torch.Tensor:
        """Embed texts: a string or N strings -> (N, D) float32 on the model's device (unnormalised).

        A text longer than the context (``context_length`` tokens with its start and end) is cut with
        the end token kept last, as the reference does, and a :class:`liv.TextTruncatedWarning` names
        it and its token count (once per distinct text): two texts that differ only after the cut get
        the same embedding. ``strict_text=True`` raises ValueError instead, before anything is encoded.
        """
        tokens = self._host_tokens(texts, strict_text)
        with self._inference():
            # host tokens: the text tower cuts them on the CPU and copies them over without a device sync
            chunks = [self.clip.encode_text(tokens[i:i + batch_size]) for i in range(0, len(tokens), batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.embed_dim, device=self.device)

    def encode_goal(self, goal: str | np.ndarray | torch.Tensor, strict_text: bool = False) -> torch.Tensor:
        """A goal -> its (D,) embedding. The goal is a text (str), an image ((H, W, 3) uint8 or float in
        [0, 1]), or an already computed embedding (a 1-D float tensor/array of length D). Over-long
        texts: see :meth:`encode_texts`. Raises ValueError / TypeError for anything else."""
        if isinstance(goal, str):
            return self.encode_texts([goal], strict_text=strict_text)[0]
        if isinstance(goal, np.ndarray):
            goal = torch.from_numpy(goal)
        if isinstance(goal, torch.Tensor) and goal.ndim == 1:
            if goal.shape[0] != self.embed_dim or not goal.is_floating_point():
                raise ValueError(f"an embedding goal must be a float vector of length {self.embed_dim}, got "
                                 f"shape {tuple(goal.shape)} dtype {goal.dtype}")
            return goal.to(self.device, torch.float32)
        if isinstance(goal, torch.Tensor) and goal.ndim == 3:
            return self.encode_images(goal)[0]
        raise TypeError("goal must be a text (str), an (H, W, 3) image, or a (D,) embedding; got "
                        f"{type(goal).__name__} with shape {tuple(getattr(goal, 'shape', ()))}")

    def similarity(self, frames: np.ndarray | torch.Tensor, goal: str | np.ndarray | torch.Tensor,
                   batch_size: int = 64, strict_text: bool = False) -> torch.Tensor:
        """Cosine similarity S(phi(o), goal) of each frame with one goal: -> (N,) float32 in [-1, 1].

        ``frames`` as in :meth:`encode_images`; ``goal`` and ``strict_text`` as in :meth:`encode_goal`.
        This is the LIV value up to the factor 1 / (1 - gamma); its increments are the potential-based
        reward. Several goals (a list, or a (G, D) / (G, H, W, 3) array) raise TypeError pointing to
        :meth:`values`, which scores them all with the frames embedded once.
        """
        if isinstance(goal, (list, tuple)):
            several = f"a {type(goal).__name__} of {len(goal)} goal{'' if len(goal) == 1 else 's'}"
        elif isinstance(goal, (np.ndarray, torch.Tensor)) and goal.ndim in (2, 4):  # (G, D) or (G, H, W, 3)
            several = f"{len(goal)} goals in an array of shape {tuple(goal.shape)}"
        else:
            several = ""
        if several:
            raise TypeError(f"similarity takes one goal (a text, an (H, W, 3) image or a (D,) embedding), got "
                            f"{several}; for several goals use model.values(frames, goals) -> (N, G)")
        goal_emb = self.encode_goal(goal, strict_text=strict_text)
        frame_emb = self.encode_images(frames, batch_size=batch_size)
        return torch.nn.functional.cosine_similarity(frame_emb, goal_emb.unsqueeze(0), dim=-1)

    def values(self, frames: np.ndarray | torch.Tensor, goals: Any, scale: str = "similarity",
               gamma: float = 0.98, batch_size: int = 64, strict_text: bool = False) -> torch.Tensor:
        """Similarity or value of frames for one goal -> (N,), or for a list of G goals -> (N, G);
        frames are embedded once. See :func:`liv.reward.values`."""
        from liv.reward import values

        return values(self, frames, goals, scale=scale, gamma=gamma, batch_size=batch_size,  # type: ignore[arg-type]
                      strict_text=strict_text)

    def rewards(self, frames: np.ndarray | torch.Tensor, goals: Any, scale: str = "similarity",
                gamma: float = 0.98, batch_size: int = 64, strict_text: bool = False) -> torch.Tensor:
        """Potential-based reward S(o_t+1) - S(o_t) -> (N-1,) or (N-1, G). See :func:`liv.reward.rewards`."""
        from liv.reward import rewards

        return rewards(self, frames, goals, scale=scale, gamma=gamma, batch_size=batch_size,  # type: ignore[arg-type]
                       strict_text=strict_text)

    # ----------------------------------------------------------------------------- persistence
    def save(self, directory: str | os.PathLike, *, evaluation: dict[str, Any] | None = None) -> None:
        """Write ``model.safetensors`` (OpenAI CLIP keys), ``config.json`` and a model card ``README.md`` into
        ``directory``, each atomically (a crash leaves either the old file or the new one, never half of one).

        The card's YAML front matter is what the Hugging Face Hub reads (``library_name: liv``, licence, tags,
        base model; see :mod:`liv.checkpoints.model_card`), so the folder can be uploaded as it is and loaded
        back with ``liv.load("hf://OWNER/REPO")``. ``evaluation``: results of
        ``liv.eval.metrics.evaluate_dataset`` (or a ``liv evaluate`` metrics.json, parsed) whose headline
        figures the card shows.
        """
        from liv.checkpoints.model_card import write_model_card
        from liv.checkpoints.native import save_native

        save_native(directory, self.clip.state_dict(), self.config)
        write_model_card(directory, self.config, evaluation)
