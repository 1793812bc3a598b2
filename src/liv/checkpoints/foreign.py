"""Read CLIP / LIV checkpoints written by other projects without running any of their code.

Pickle-based files only ever go through ``torch.load(..., weights_only=True)``
(:mod:`liv.checkpoints.torch_pickle`); the CLIP weights are then looked for inside the usual
wrappers, key prefixes and training-checkpoint nesting (:mod:`liv.checkpoints.wrappers`).
OpenAI's TorchScript archives (``RN50.pt`` and friends) are not handed to ``torch.jit.load``, which
would compile and run the Python-like code stored inside them; their ``data.pkl`` is read
by a small allow-list unpickler of our own and only the tensors are kept.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# One exception type for every checkpoint reader in liv; re-exported from here.
from liv.checkpoints.errors import CheckpointError
from liv.checkpoints.torch_pickle import load_weights_only
from liv.checkpoints.wrappers import AmbiguousWeights, Found, best_guess, describe, find_clip_weights

__all__ = ["FORMATS", "CheckpointError", "ForeignCheckpoint", "check_container", "read_foreign_state_dict"]

FORMATS = ("liv-release", "liv-snapshot", "openai-torchscript", "clip-state-dict",
           "safetensors-state-dict", "training-checkpoint")

# TorchScript keeps this causal mask as a plain tensor attribute; it is not in CLIP's state dict.
_NON_STATE_ATTRIBUTES = frozenset({"attn_mask"})
_MAX_MODULE_DEPTH = 64

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass(frozen=True)
class ForeignCheckpoint:
    """A CLIP state dict read from a foreign file.

    ``state_dict`` has plain OpenAI CLIP keys and CPU tensors (half precision widened to
    float32); ``format`` is one of :data:`FORMATS` (``training-checkpoint``: weights nested in
    a checkpoint other than the reference LIV's); ``extras`` holds the top-level scalar
    metadata of a checkpoint that nests its weights, such as ``global_step`` or ``epoch`` (never
    optimizer state); ``location`` is the keys under which the weights were found.
    """

    state_dict: dict[str, torch.Tensor]
    format: str
    extras: dict = field(default_factory=dict)
    location: tuple = ()


def read_foreign_state_dict(path: str | os.PathLike) -> ForeignCheckpoint:
    """Read a CLIP state dict from a LIV release/snapshot, OpenAI TorchScript archive,
    plain ``torch.save`` state dict, training checkpoint or ``.safetensors`` file, never
    executing pickled code.

    Wrapper prefixes (``module.``, ``model.``, ``_orig_mod.``, any other attribute name) are
    removed and nested weights are found as :mod:`liv.checkpoints.wrappers` describes.

    Raises :class:`CheckpointError` (naming ``path``) for missing, empty, corrupt,
    unrecognised or unsafe files (naming the refused class or function), for files without a
    CLIP state dict (naming the keys missing and listing the keys found), for files holding
    several CLIP state dicts or CLIP keys outside the weights' prefix (naming where), and for
    weights with non-tensor entries or keys that clash once ``_orig_mod`` is removed.
    """
    p = Path(path)
    container, names = _container(p)
    fmt: str | None = None  # for pickles: decided by where the weights are
    if container == "safetensors":
        obj, fmt = _load_safetensors(p), "safetensors-state-dict"
    elif container == "torchscript":
        obj, fmt = _read_torchscript(p, names), "openai-torchscript"
    else:
        obj = load_weights_only(p)
    found, fmt, extras = _unwrap(p, obj, fmt)
    return ForeignCheckpoint(state_dict=_finish(p, found), format=fmt, extras=extras,
                             location=found.location)


def check_container(path: str | os.PathLike) -> str:
    """Check, without reading the weights, that ``path`` is a file of a kind
    :func:`read_foreign_state_dict` reads -> ``"safetensors"``, ``"torchscript"``, ``"torch-zip"`` or
    ``"pickle"``. Raises CheckpointError as that function does for a missing, empty, unreadable or
    unrecognised file, or a zip archive whose directory is damaged."""
    return _container(Path(path))[0]


def _container(p: Path) -> tuple[str, list[str]]:
    """(kind of file, names in its zip archive) from the first bytes and a zip's directory."""
    if not p.exists():
        raise CheckpointError(p, "file does not exist")
    if not p.is_file():
        raise CheckpointError(p, "not a regular file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise CheckpointError(p, f"cannot be read ({e.strerror or e})") from e
    if not head:
        raise CheckpointError(p, "file is empty, not a checkpoint")
    if p.suffix == ".safetensors" or _looks_like_safetensors(head, size):
        return "safetensors", []
    if head.startswith(b"PK"):
        names = _zip_names(p)
        # Same test torch.load uses to divert a zip to torch.jit.load.
        if any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names):
            return "torchscript", names
        return "torch-zip", names
    if head.startswith(b"\x80"):  # pickle protocol >= 2: torch.save's legacy format
        return "pickle", []
    raise CheckpointError(
        p, f"not a checkpoint: unrecognised file header {head[:8]!r} "
        "(expected a torch zip archive, a pickle or a safetensors file)"
    )


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    # safetensors: little-endian u64 header length, then a JSON object.
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return 8 + struct.unpack("<Q", head[:8])[0] <= size


def _load_safetensors(p: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except Exception as e:  # safetensors raises its own SafetensorError for bad headers
        raise CheckpointError(p, f"corrupt or truncated safetensors file ({e})") from e


def _zip_names(p: Path) -> list[str]:
    try:
        with zipfile.ZipFile(p) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise CheckpointError(p, f"truncated or corrupt zip archive ({e})") from e


def _unwrap(p: Path, obj: Any, fmt: str | None = None) -> tuple[Found, str, dict]:
    """The CLIP weights in ``obj``, the file's format (``fmt`` if given) and its metadata."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(p, f"holds a {type(obj).__name__}, not a dict of tensors")
    try:
        found = find_clip_weights(obj)
    except AmbiguousWeights as e:
        raise CheckpointError(p, str(e)) from None
    if found is None:
        raise _no_clip_state_dict(p, best_guess(obj))
    location = found.location
    if fmt is not None or not location:
        return found, fmt or "clip-state-dict", {}
    if location == ("liv",):
        fmt = "liv-snapshot" if ("optimizer" in obj or "global_step" in obj) else "liv-release"
    else:
        fmt = "training-checkpoint"
    extras = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, (bool, int, float, str))}
    return found, fmt, extras


def _no_clip_state_dict(p: Path, guess: Found) -> CheckpointError:
    where = f" (under {describe(guess.location)})" if guess.location else ""
    raw = guess.weights
    shown = ", ".join(repr(k) for k in list(raw)[:8]) or "none"
    more = f" (+{len(raw) - 8} more)" if len(raw) > 8 else ""
    return CheckpointError(
        p, f"no recognisable CLIP state dict: missing {', '.join(guess.missing)}; keys found{where}: {shown}{more}"
    )


def _finish(p: Path, found: Found) -> dict[str, torch.Tensor]:
    """The weights ``found`` names, under their CLIP names, as CPU tensors (half widened)."""
    raw = found.weights
    where = f" (under {found.describe()})" if found.location or found.prefix else ""
    odd = [k for _, k in found.names if not isinstance(raw[k], torch.Tensor)]
    # Without a prefix the whole dict is the state dict, so a non-string key is part of it.
    if odd or (not found.prefix and any(not isinstance(k, str) for k in raw)):
        raise CheckpointError(p, f"state dict{where} has non-tensor entries or keys: {odd[:5]}")
    twice = sorted(k for k, n in collections.Counter(name for name, _ in found.names).items() if n > 1)
    if twice:  # "visual.x" next to "visual._orig_mod.x": which one is the model's is unknowable
        raise CheckpointError(p, f"state dict{where} has keys that are the same once "
                                 f"'_orig_mod.' is removed: {twice[:5]}")
    out = {}
    for name, k in found.names:
        v = raw[k].detach().to("cpu")
        out[name] = v.float() if v.dtype in (torch.float16, torch.bfloat16) else v
    return out


# --- OpenAI TorchScript archives -------------------------------------------------------------


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"refused global {name}")


class _ScriptObject:
    """Stands in for every ``__torch__.*`` class: keeps the pickled attributes, runs nothing."""

    attributes: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.attributes = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    # Our stand-in for torch._utils._rebuild_tensor_v2. Sizes and strides come from an
    # untrusted file, so they are checked against the storage here rather than trusted.
    if not isinstance(storage, torch.Tensor) or not isinstance(offset, int):
        raise pickle.UnpicklingError("malformed tensor record")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or min((*size, *stride, offset), default=0) < 0:
        raise pickle.UnpicklingError("malformed tensor shape")
    if all(n > 0 for n in size):
        end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
        if end > storage.numel():
            raise pickle.UnpicklingError("tensor reaches past the end of its storage")
    view = torch.as_strided(storage, size, stride, offset)
    return view.clone(memory_format=torch.contiguous_format)


class _ScriptUnpickler(pickle.Unpickler):
    """Allow-list unpickler for a TorchScript ``data.pkl``; anything else raises."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self._zf, self._root = zf, root

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            # The storage "class" only tells persistent_load which dtype the bytes hold.
            return _STORAGE_DTYPES[name]
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        # Protocol-2 pickles spell builtins "__builtin__"; show the name users know.
        raise _RefusedGlobal(f"{'builtins' if module == '__builtin__' else module}.{name}")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], torch.dtype) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and pid[4] >= 0):
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:80]}")
        _, dtype, key, _location, numel = pid
        nbytes = numel * dtype.itemsize
        data = self._zf.read(f"{self._root}data/{key}")
        if len(data) < nbytes:
            raise pickle.UnpicklingError(f"storage {key} is shorter than its {numel} elements")
        if nbytes == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(data[:nbytes]), dtype=dtype)


def _read_torchscript(p: Path, names: list[str]) -> dict[str, torch.Tensor]:
    roots = [n[: -len("data.pkl")] for n in names
             if (n == "data.pkl" or n.endswith("/data.pkl")) and n.count("/") <= 1]
    if len(roots) != 1:
        raise CheckpointError(p, "TorchScript archive without a single top-level data.pkl")
    root = roots[0]
    try:
        with zipfile.ZipFile(p) as zf:
            if f"{root}byteorder" in names and zf.read(f"{root}byteorder").strip() != b"little":
                raise CheckpointError(p, "big-endian TorchScript archives are not supported")
            top = _ScriptUnpickler(zf.read(f"{root}data.pkl"), zf, root).load()
    except CheckpointError:
        raise
    except _RefusedGlobal as e:
        raise CheckpointError(
            p, f"refused: its data.pkl would import or call {e.name!r}, which could execute code"
        ) from None
    except Exception as e:  # zip CRC/zlib errors, truncated or nonsensical pickles
        raise CheckpointError(p, f"corrupt TorchScript archive ({type(e).__name__}: {e})") from e
    if not isinstance(top, _ScriptObject):
        raise CheckpointError(p, f"data.pkl holds a {type(top).__name__}, not a TorchScript module")
    out: dict[str, torch.Tensor] = {}
    _collect(p, top, "", out, 0)
    return out


def _collect(p: Path, obj: _ScriptObject, prefix: str, out: dict, depth: int) -> None:
    # Tensor attributes are parameters/buffers, module attributes are submodules; ints,
    # strings, None (hooks) and the like are not part of a state dict.
    if depth > _MAX_MODULE_DEPTH:  # also stops a pickle whose modules refer to each other
        raise CheckpointError(p, "TorchScript module tree is nested too deeply (a cycle?)")
    for name, value in obj.attributes.items():
        if not isinstance(name, str) or name in _NON_STATE_ATTRIBUTES:
            continue
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            _collect(p, value, f"{prefix}{name}.", out, depth + 1)
