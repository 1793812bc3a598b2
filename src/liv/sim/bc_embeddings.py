"""Frozen LIV embeddings of a behaviour-cloning dataset, computed once and cached on disk.

The cache key hashes the model's weights (:func:`model_fingerprint`), the dataset and the settings, so
a changed model or dataset is embedded afresh; files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from liv.data.episodes import EpisodeDataset
    from liv.model import LIVModel

_CACHE_FORMAT = 2  # bump when the cached arrays change meaning (2: rewards)


def model_fingerprint(model: LIVModel) -> str:
    """SHA-256 (hex) of a model's weights, architecture and preprocessing: equal models, equal strings."""
    h = hashlib.sha256()
    h.update(json.dumps({"clip": model.config.clip.to_dict(), "antialias": model.config.antialias},
                        sort_keys=True).encode())
    for name, tensor in sorted(model.clip.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _dataset_fingerprint(dataset: EpisodeDataset) -> dict[str, Any]:
    """What identifies a dataset's contents cheaply: its resolved root, episode lengths and texts, and the
    modification time of its metadata (a regenerated dataset in the same folder gets a new one)."""
    root = Path(dataset.root).resolve()
    info = root / "meta" / "info.json"
    return {"root": str(root), "mtime": info.stat().st_mtime_ns if info.is_file() else None,
            "lengths": [len(e) for e in dataset], "texts": [e.text for e in dataset]}


def embed_dataset(model: LIVModel, dataset: EpisodeDataset, cache_dir: str | os.PathLike[str] | None,
                  batch_size: int = 64, progress: bool = False) -> dict[str, Any]:
    """Frozen embeddings of every frame and every episode's text, computed once and cached on disk.

    Returns a dict of numpy arrays over the N frames of all E episodes: ``image`` (N, D) float32 phi(o)
    (unnormalised, as the model returns them), ``episode`` (N,) int64 episode position in ``dataset``,
    ``actions`` (N, A) float32, ``states`` (N, S) float32 (S = 0 if the data has none), ``text`` (E, D)
    float32 psi(l) of each episode's annotation, ``texts`` (E,) str, ``succeeded`` (E,) bool (episodes
    without flags count as successful), ``rewards`` (N,) float32 (the data's ``next.reward``; present only
    when every episode has it), plus ``key`` (str, the cache key) and ``cached`` (bool, whether
    it was read from the cache). ``cache_dir`` None: no cache. The key hashes the model's weights, the
    dataset (root, lengths, texts, metadata mtime) and the settings, so a changed model or dataset is
    embedded afresh; the file is ``<cache_dir>/embeddings-<key[:16]>.npz``, written atomically.
    """
    settings = {"format": _CACHE_FORMAT, "model": model_fingerprint(model), "data": _dataset_fingerprint(dataset)}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir) / f"embeddings-{key[:16]}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return {**{k: z[k] for k in z.files}, "key": key, "cached": True}
        except (OSError, ValueError, KeyError):
            pass  # unreadable (e.g. from an interrupted older version): embed again and overwrite
    images, episode_ids, actions, states, rewards = [], [], [], [], []
    for i, ep in enumerate(dataset):
        if ep.actions is None:
            raise ValueError(f"{ep.source}: the episode has no actions; behaviour cloning needs them")
        frames = ep.all_frames()
        images.append(model.encode_images(frames, batch_size=batch_size).cpu().numpy().astype(np.float32))
        episode_ids.append(np.full(len(frames), i, dtype=np.int64))
        actions.append(np.asarray(ep.actions, dtype=np.float32))
        states.append(np.asarray(ep.states, dtype=np.float32) if ep.states is not None
                      else np.zeros((len(frames), 0), np.float32))
        if ep.rewards is not None:
            rewards.append(np.asarray(ep.rewards, dtype=np.float32))
        if progress:
            print(f"embedded episode {i + 1}/{len(dataset)}", flush=True)
    texts = [ep.text for ep in dataset]
    distinct = list(dict.fromkeys(texts))
    text_emb = model.encode_texts(distinct).cpu().numpy().astype(np.float32)
    out = {"image": np.concatenate(images), "episode": np.concatenate(episode_ids),
           "actions": np.concatenate(actions), "states": np.concatenate(states),
           "text": text_emb[[distinct.index(t) for t in texts]], "texts": np.array(texts, dtype=str),
           "succeeded": np.array([ep.succeeded is not False for ep in dataset], dtype=bool)}
    if rewards and len(rewards) == len(dataset):
        out["rewards"] = np.concatenate(rewards)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), **out)
        os.replace(tmp, path)  # atomic: a crash leaves no half-written cache behind
    return {**out, "key": key, "cached": False}
