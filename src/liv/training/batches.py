"""Training batches: draw the reference's 5-frame samples, decode each distinct frame once, augment.

Sample ``i`` of global step ``s`` is drawn from a generator seeded by ``(seed, s, i)``, so a batch is a
pure function of the step: a resumed run sees exactly the data it would have seen, every process of a
distributed run can draw its own share of the global batch, and no data RNG state needs saving.

A sample whose frames cannot be read (a DataError: corrupt, truncated or missing file, a frame of
another size) is left out and drawn again from ``(seed, s, i, attempt)``, attempt 1, 2, ...: the
replacement is as much a function of the step as the sample, so resume stays exact. The batch lists
the samples it replaced; the training loop logs them and decides when there are too many.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from liv.data.episodes import DataError, Episode, name_some
from liv.data.sampling import SampleMode, min_length, sample_indices, unique_frames
from liv.models.preprocess import resize_center_crop
from liv.models.tokenizer import tokenize


def random_resized_crop_box(height: int, width: int, rng: np.random.Generator,
                            scale: tuple[float, float] = (0.2, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """A random crop box (top, left, h, w) in pixels, by torchvision's RandomResizedCrop rule.

    Up to 10 tries of an area fraction uniform in ``scale`` and a log-uniform aspect ratio in ``ratio``;
    if none fits, the largest centred crop whose aspect ratio is clamped to ``ratio``.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def augment_frames(frames: np.ndarray, resolution: int, rng: np.random.Generator | None,
                   crop_scale: tuple[float, float] = (0.2, 1.0), antialias: bool = True) -> torch.Tensor:
    """(U, H, W, 3) uint8 frames of ONE sample -> (U, 3, R, R) float32 in [0, 1].

    With ``rng``: one random resized crop, identical for all frames of the sample (so the frames stay
    comparable, as the reference's "rctraj" augmentation). Without: resize and centre crop, as inference.
    """
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    if rng is None:
        return resize_center_crop(x, resolution, antialias).contiguous()
    top, left, h, w = random_resized_crop_box(x.shape[-2], x.shape[-1], rng, crop_scale)
    x = x[..., top:top + h, left:left + w]
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                         antialias=antialias).contiguous()


@dataclass(frozen=True)
class StreamSpec:
    """What to draw: sampling mode and augmentation of every sample."""

    resolution: int
    """Side of the square frames the model takes."""
    slots: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Which of [o_0, o_goal, o_k, o_k+1, o_text_goal] the objective needs (others are not decoded)."""
    mode: SampleMode = "episode"
    """Sampling mode, see liv.data.sampling."""
    alpha: float = 0.95
    """Text-goal window of segment mode."""
    degenerate_prob: float = 0.0
    """Probability of a degenerate sample."""
    augment: bool = True
    """Random resized crop (True) or centre crop (False)."""
    crop_scale: tuple[float, float] = (0.2, 1.0)
    """Area range of the random crop."""
    antialias: bool = True
    """Antialiased resizing (the model's preprocessing setting)."""
    context_length: int = 0
    """Text context of the model: batches then carry ``tokens`` (tokenized in the loader's workers,
    off the training loop); 0: texts only."""


class UnreadableSamples(DataError):
    """More samples of one batch could not be read than it may replace; ``records`` lists them all (as
    ``make_batch``'s ``bad``), the message is the last one's error."""

    def __init__(self, where: str, problem: str, records: list[dict]):
        super().__init__(where, problem)
        self.records = records


def _bad_record(step: int, sample: int, attempt: int, episode: Episode, frames: list[int], error: DataError) -> dict:
    return {"step": step, "sample": sample, "attempt": attempt, "episode": episode.source, "file": error.where,
            "frames": frames, "error": error.problem}


def make_batch(episodes: Sequence[Episode], spec: StreamSpec, seed: int, step: int,
               sample_ids: Sequence[int], max_bad: int = 0) -> dict:
    """The samples ``sample_ids`` of global step ``step`` -> a batch dict.

    Keys: ``pixels`` (F, 3, R, R) float32 in [0, 1], the distinct frames of all samples; ``slots``
    (B, 5) int64 index into ``pixels`` per frame role (-1 for roles not drawn); ``texts`` list of B
    str; ``episode`` (B,) int64; ``frame_index`` (B, 5) int64; ``step`` int; with
    ``spec.context_length``, ``tokens`` (B, context_length) int64 token ids of the texts; ``bad``: one
    dict per sample left out as unreadable and replaced (keys step, sample, attempt, episode, file,
    frames, error), up to ``max_bad`` of them.

    Raises UnreadableSamples (a DataError) when more than ``max_bad`` samples cannot be read.
    """
    pixels, slots, texts, episode_ids, frame_index, bad = [], [], [], [], [], []
    offset = 0
    for i in sample_ids:
        attempt = 0
        while True:
            rng = np.random.default_rng([seed, step, int(i), attempt] if attempt else [seed, step, int(i)])
            e = int(rng.integers(len(episodes)))
            episode = episodes[e]
            distinct = np.zeros(0, dtype=np.int64)
            try:
                indices = sample_indices(len(episode), rng, spec.mode, spec.alpha, spec.degenerate_prob)
                distinct, inverse = unique_frames(indices[list(spec.slots)])
                frames = episode.read(distinct.tolist())
                break
            except DataError as error:
                bad.append(_bad_record(step, int(i), attempt, episode, distinct.tolist(), error))
                if len(bad) > max_bad:
                    raise UnreadableSamples(error.where, error.problem, bad) from None
                attempt += 1
        pixels.append(augment_frames(frames, spec.resolution, rng if spec.augment else None, spec.crop_scale,
                                     spec.antialias))
        row = np.full(5, -1, dtype=np.int64)
        row[list(spec.slots)] = inverse + offset
        offset += len(distinct)
        slots.append(row)
        texts.append(episode.text)
        episode_ids.append(e)
        frame_index.append(indices)
    batch = {"pixels": torch.cat(pixels), "slots": torch.from_numpy(np.stack(slots)), "texts": texts,
             "episode": torch.tensor(episode_ids), "frame_index": torch.from_numpy(np.stack(frame_index)),
             "step": step, "bad": bad}
    if spec.context_length:
        # A long text warns; the data check, when on, has refused it before training started.
        batch["tokens"] = tokenize(texts, spec.context_length, truncate="warn")
    return batch


def few_episodes_warning(episodes: int, batch_size: int, world_size: int = 1, infonce: bool = True) -> str | None:
    """A warning when a batch must repeat episodes (fewer ``episodes`` than ``batch_size``), naming both
    and the largest batch size at most ``episodes`` that the processes can share (at least 2); None when
    that is not smaller than ``batch_size``. ``infonce``: the objective counts identical texts as
    negatives, so an episode's copies in one batch hold InfoNCE at about ln(copies) or more."""
    suggested = max(episodes - episodes % world_size, 2 if world_size == 1 else world_size)
    if episodes >= batch_size or suggested >= batch_size:
        return None
    copies = batch_size / episodes
    why = (f", so InfoNCE counts an episode's copies as negatives of each other and stays above about "
           f"ln({copies:.3g}) = {math.log(copies):.2f}" if infonce else "")
    return (f"{episodes} episode{'s' if episodes != 1 else ''} for a batch of {batch_size}: each batch draws "
            f"every episode about {copies:.3g} times{why}; --batch-size {suggested} suits this data")


class BatchStream(IterableDataset):
    """Batches for steps [start_step, end_step) of this process's share of each global batch.

    With DataLoader workers, worker w makes steps start + w, start + w + W, ...; the DataLoader returns
    them round-robin, i.e. in step order. Use ``DataLoader(stream, batch_size=None, num_workers=...)``.

    Episodes shorter than ``min_length(spec.mode)`` cannot be sampled and are left out: ``episodes`` holds
    the others, ``skipped_sources`` the left-out ones' ``Episode.source``. Raises ValueError when no
    episode is long enough, or when ``global_batch`` is not divisible by ``world_size``.

    A batch may replace up to ``max_bad`` unreadable samples (see :func:`make_batch`). A DataError does
    not leave the iterator, where a DataLoader worker would turn it into a traceback: the stream yields
    ``{"step", "bad", "incomplete": True}`` for a batch past ``max_bad``, ``{"step", "error": message}``
    for any other DataError, and then ends.
    """

    def __init__(self, episodes: Sequence[Episode], spec: StreamSpec, seed: int, global_batch: int,
                 start_step: int, end_step: int, rank: int = 0, world_size: int = 1, max_bad: int = 0):
        if global_batch % world_size:
            raise ValueError(f"batch_size {global_batch} is not divisible by the {world_size} processes")
        needed = min_length(spec.mode)
        long_enough = [len(e) >= needed for e in episodes]  # len() of a file-backed episode stats the file
        usable = [e for e, ok in zip(episodes, long_enough) if ok]
        self.skipped_sources = [e.source for e, ok in zip(episodes, long_enough) if not ok]
        if not usable:
            raise ValueError(f"no episode has the {needed} frames that sampling mode '{spec.mode}' needs"
                             + (f": all {len(episodes)} are shorter ({name_some(self.skipped_sources)})"
                                if episodes else ": there are no episodes"))
        self.episodes = usable
        self.spec = spec
        self.seed = seed
        self.start_step, self.end_step = start_step, end_step
        self.max_bad = max_bad
        per_rank = global_batch // world_size
        self.sample_ids = range(rank * per_rank, (rank + 1) * per_rank)

    @property
    def skipped(self) -> int:
        """Number of episodes left out as too short to sample."""
        return len(self.skipped_sources)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start_step + worker, self.end_step, workers):
            try:
                batch = make_batch(self.episodes, self.spec, self.seed, step, self.sample_ids, self.max_bad)
            except UnreadableSamples as e:
                yield {"step": step, "bad": e.records, "incomplete": True}
                return
            except DataError as e:
                yield {"step": step, "error": str(e)}
                return
            yield batch

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)
