"""What a model may be called, in one place: every ``--model`` option, ``liv train --init``, ``liv info`` and
``liv.load`` accept the same names.

A name is, in this order:

1. a local file or folder (any format ``liv.load`` reads): a path that exists always wins, so a folder
   that happens to be called ``clip-tiny`` or ``liv`` is that folder;
2. a preset (``clip-tiny``, ``clip-small``, ``clip-rn50``): a new model with random weights from the preset's
   architecture (seeded; see ``liv.load``);
3. a named pretrained model of :data:`PRETRAINED` (``liv-resnet50``, ``openai-rn50``; ``liv models`` lists
   them), downloaded once into a cache (see :mod:`liv.hub`);
4. ``hf://OWNER/REPO[@REVISION][/SUBFOLDER]``: a Hugging Face Hub repository holding a liv model
   (``model.safetensors`` + ``config.json``) or a file in the reference's layout (``model.pt``).

:func:`model_name_problem` is cheap (no download, no file read) and serves as the command line's
``"check"``; :func:`resolve_model` says what a name stands for, downloading what it must. Nothing here
imports torch or huggingface_hub at import time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Pretrained:
    """A named pretrained model: where it is published and under which licence.

    Exactly one source: ``hub_repo`` (files ``hub_files`` of a Hugging Face Hub repository, the first one
    read) or ``url`` (a path on :data:`OPENAI_ENDPOINT` with its published ``sha256``)."""

    name: str
    aliases: tuple[str, ...]
    description: str
    license: str
    size: str
    """Download size as its publishers' pages give it, for ``liv models``."""
    hub_repo: str | None = None
    hub_files: tuple[str, ...] = ()
    url_path: str | None = None
    sha256: str | None = None

    @property
    def source(self) -> str:
        """Where the files come from, as a user could look it up."""
        if self.hub_repo:
            return f"hf://{self.hub_repo} ({', '.join(self.hub_files)})"
        return openai_url(self)


OPENAI_ENDPOINT = "https://openaipublic.azureedge.net"
"""Host of OpenAI's CLIP weights; ``LIV_OPENAI_ENDPOINT`` replaces it (a mirror, or a test server)."""

# Checked against their public sources (not downloaded here): the Hub repository and file names are those
# of the reference's load_liv() (penn-pal-lab/LIV, liv/__init__.py), the URL and SHA-256 (the URL's
# second-to-last part, which CLIP's loader checks) those of OpenAI's clip/clip.py `_MODELS["RN50"]`;
# licences: both repositories are MIT.
PRETRAINED: dict[str, Pretrained] = {p.name: p for p in (
    Pretrained("liv-resnet50", ("liv", "resnet50"),
               "the LIV release (Ma et al. 2023): CLIP RN50 trained with LIV on EPIC-KITCHENS", "MIT", "~244 MiB",
               hub_repo="jasonyma/LIV", hub_files=("model.pt", "config.yaml")),
    Pretrained("openai-rn50", (),
               "OpenAI CLIP RN50 (TorchScript archive, read without running it): the paper's CLIP rows' init",
               "MIT", "~244 MiB",
               url_path="/clip/models/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
               sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"),
)}
"""Named pretrained models by name; :func:`pretrained` also knows their aliases."""

_HF = re.compile(r"hf://(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^/\s]+))?"
                 r"(?:/(?P<subfolder>[^\s]+?))?/?")
HF_FORM = "hf://OWNER/REPO[@REVISION][/SUBFOLDER]"


def openai_url(entry: Pretrained) -> str:
    """The download address of an OpenAI-hosted entry (``LIV_OPENAI_ENDPOINT`` read now)."""
    base = os.environ.get("LIV_OPENAI_ENDPOINT", "").rstrip("/") or OPENAI_ENDPOINT
    return base + (entry.url_path or "")


def pretrained(name: str) -> Pretrained | None:
    """The registry entry called ``name`` or one of its aliases, or None."""
    return PRETRAINED.get(name) or next((p for p in PRETRAINED.values() if name in p.aliases), None)


@dataclass(frozen=True)
class HubName:
    """A parsed ``hf://`` name."""

    repo: str
    revision: str | None = None
    subfolder: str | None = None


def parse_hf(name: str) -> HubName | None:
    """``hf://OWNER/REPO[@REVISION][/SUBFOLDER]`` -> HubName; None for a name that does not start with
    ``hf://``. Raises ValueError for one that does but is not of that form."""
    if not name.startswith("hf://"):
        return None
    match = _HF.fullmatch(name)
    if match is None or ".." in name.split("/"):
        raise ValueError(f"{name}: a Hub name is {HF_FORM}")
    return HubName(match["repo"], match["revision"], match["subfolder"])


@dataclass(frozen=True)
class ModelSource:
    """What a model name stands for: exactly one of ``path`` (a local file or folder, downloaded for a named
    model) and ``preset``."""

    name: str
    """The name as given."""
    path: Path | None = None
    """Local file or folder to read."""
    preset: str | None = None
    """Preset whose architecture gets random weights."""
    origin: dict[str, Any] = field(default_factory=dict)
    """For a downloaded model: what the loaded model's provenance records (its name, source, revision,
    licence, base model)."""


def _preset_names() -> list[str]:
    from liv.models.presets import PRESETS  # imports torch: only for a name that is not a path

    return list(PRESETS)


def known_names() -> str:
    """The names a model may have besides a path, for messages."""
    named = ", ".join(n for p in PRETRAINED.values() for n in (p.name, *p.aliases))
    return f"presets {', '.join(_preset_names())} (random weights); pretrained {named}; {HF_FORM}"


def _unknown(name: str) -> str:
    return f"{name}: no such file or folder, and not a model name; names are {known_names()}"


def is_model_name(name: str | os.PathLike) -> bool:
    """True when ``name`` is a model name rather than a path (a path that exists is never a name).
    Raises ValueError for a malformed ``hf://`` name."""
    text = os.fspath(name)
    if os.path.exists(text):
        return False
    return parse_hf(text) is not None or pretrained(text) is not None or text in _preset_names()


def model_name_problem(name: str | os.PathLike) -> str | None:
    """What keeps ``name`` from naming a model, or None; reads no file and downloads nothing.

    Phrased to follow an option's name: ``"x: no such file or folder, and not a model name; ..."``.
    """
    text = os.fspath(name)
    if not text.strip():
        return f"must not be empty, got {text!r}"
    try:
        if os.path.exists(text) or is_model_name(text):
            return None
    except ValueError as e:
        return str(e)
    return _unknown(text)


def resolve_model(name: str | os.PathLike) -> ModelSource:
    """What ``name`` stands for (see the module docstring for the order); a named or ``hf://`` model is
    downloaded unless cached.

    Raises CheckpointError (a ValueError) naming ``name`` when it is neither an existing path nor a name,
    or when a download fails (see :mod:`liv.hub`).
    """
    from liv.checkpoints.errors import CheckpointError

    text = os.fspath(name)
    if text.strip() and os.path.exists(text):
        return ModelSource(text, path=Path(text))
    try:
        hub = parse_hf(text)
    except ValueError as e:
        raise CheckpointError(text, str(e).removeprefix(f"{text}: ")) from None
    if hub is not None:
        return _resolve_hf(text, hub)
    entry = pretrained(text)
    if entry is not None:
        return _resolve_pretrained(text, entry)
    if text in _preset_names():
        return ModelSource(text, preset=text)
    raise CheckpointError(text, _unknown(text).removeprefix(f"{text}: "))


def _commit(path: Path) -> str | None:
    # huggingface_hub's cache keeps each commit's files under snapshots/<commit hash>/
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _resolve_pretrained(name: str, entry: Pretrained) -> ModelSource:
    from liv import hub

    origin: dict[str, Any] = {"pretrained": entry.name, "license": entry.license.lower()}
    if entry.hub_repo:
        first = hub.hub_download(name, entry.hub_repo, entry.hub_files[0])
        # the other files at the first one's commit, so that all lie in one snapshot even if the branch moves
        paths = [first] + [hub.hub_download(name, entry.hub_repo, f, _commit(first)) for f in entry.hub_files[1:]]
        origin.update(source=f"hf://{entry.hub_repo}", revision=_commit(paths[0]), base_model=entry.hub_repo)
        return ModelSource(name, path=paths[0], origin=origin)
    assert entry.url_path and entry.sha256
    url = openai_url(entry)
    origin.update(source=url, sha256=entry.sha256)
    return ModelSource(name, path=hub.url_download(name, url, entry.sha256), origin=origin)


def _resolve_hf(name: str, ref: HubName) -> ModelSource:
    """A liv model folder (config.json + model.safetensors) if the repository has one, else its model.pt."""
    from liv import hub

    origin: dict[str, Any] = {"source": name, "base_model": ref.repo}
    try:
        config = hub.hub_download(name, ref.repo, "config.json", ref.revision, ref.subfolder)
    except (hub.NoSuchFile, hub.NotCached) as no_config:
        # No liv model there, or none cached: the reference's layout (only from the cache when the Hub could not
        # be reached, so that its retries are not waited for twice).
        try:
            path = hub.hub_download(name, ref.repo, "model.pt", ref.revision, ref.subfolder,
                                    local_only=isinstance(no_config, hub.NotCached))
        except (hub.NoSuchFile, hub.NotCached) as no_file:
            where = f"{ref.repo}{'/' + ref.subfolder if ref.subfolder else ''}"
            if isinstance(no_config, hub.NoSuchFile) and isinstance(no_file, hub.NoSuchFile):
                raise hub.NoSuchFile(name, f"{hub.hub_page(ref.repo)} has neither a liv model (config.json and "
                                           f"model.safetensors) nor a model.pt in {where}") from None
            raise hub.NotCached(name, f"neither a liv model (config.json and model.safetensors) nor a model.pt of "
                                      f"{where} is in the Hugging Face cache, and {hub.unavailable()}: download "
                                      f"them from {hub.hub_page(ref.repo)} when online, or give the path of a local "
                                      "copy instead") from None
        return ModelSource(name, path=path, origin={**origin, "revision": _commit(path)})
    # At the commit config.json came from, not the branch again: a push between the two downloads would
    # otherwise leave the weights in another snapshot folder than their config.
    hub.hub_download(name, ref.repo, "model.safetensors", _commit(config) or ref.revision, ref.subfolder)
    return ModelSource(name, path=config.parent, origin={**origin, "revision": _commit(config)})


def cached_path(entry: Pretrained) -> Path | None:
    """Where ``entry`` is cached, or None if it is not (every file of it); never touches the network."""
    from liv import hub

    if entry.hub_repo:
        found = [hub.hub_cached(entry.hub_repo, f) for f in entry.hub_files]
        return found[0] if all(found) else None
    assert entry.url_path and entry.sha256
    path = hub.url_cache_path(entry.sha256, entry.url_path.rsplit("/", 1)[-1])
    return path if path.is_file() else None


__all__ = ["HF_FORM", "HubName", "ModelSource", "OPENAI_ENDPOINT", "PRETRAINED", "Pretrained", "cached_path",
           "is_model_name", "known_names", "model_name_problem", "openai_url", "parse_hf", "pretrained",
           "resolve_model"]
