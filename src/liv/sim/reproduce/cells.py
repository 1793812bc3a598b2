"""The cache of `liv reproduce`: every result is a cell, stored under a key of the settings it depends on.

A cell's key is a hash of its own settings and the keys of the cells it reads (the data, a model), so
a changed setting changes the keys of exactly the cells that depend on it and nothing else: a rerun
reuses every other cell. Cells are JSON files ``OUT/cells/<kind>/<key>.json`` holding the settings
they were made with (to be inspected) and their result, each written atomically, so a run killed at
any moment loses at most the cells in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

KEY_CHARS = 16
"""Hex digits of a key kept in names (64 bits: collisions are not a concern for a run's few thousand cells)."""


def cell_key(kind: str, settings: dict[str, Any]) -> str:
    """The key of a cell of ``kind`` with ``settings`` (JSON-serialisable, dependency keys included)."""
    text = json.dumps({"kind": kind, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def file_key(path: str | os.PathLike[str]) -> str:
    """A key of a model file or folder that changes when its contents do: resolved path, and the size and
    modification time of each file (hashing a 400 MB checkpoint on every run would cost more than it buys)."""
    root = Path(path).resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stats = [(str(p.relative_to(root.parent)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return cell_key("file", {"path": str(root), "files": stats})


class CellStore:
    """Results by (kind, key) under ``root`` (``OUT/cells``)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.json"

    def get(self, kind: str, key: str) -> Any | None:
        """The stored result, or None when the cell is missing or unreadable (then it is recomputed)."""
        path = self.path(kind, key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record.get("result") if record.get("key") == key else None

    def put(self, kind: str, key: str, settings: dict[str, Any], result: Any) -> None:
        """Store ``result`` (JSON-serialisable) with the ``settings`` it was made with, atomically."""
        path = self.path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "kind": kind, "settings": settings, "result": result},
                                  default=str), encoding="utf-8")
        os.replace(tmp, path)
