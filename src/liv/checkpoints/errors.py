"""The one exception type for checkpoints that cannot be read."""

from __future__ import annotations

import os


class CheckpointError(ValueError):
    """A checkpoint could not be read; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
