"""Files a process keeps open between reads (video containers, parquet readers), always the file on disk now.

A handle is reused only while the file it was opened on is still the one at its path: same inode,
size, modification and status-change times (:func:`file_identity`). A file rewritten in place,
replaced by ``os.replace``, or restored with its old modification time (``cp -p``, rsync) changes at
least its inode or its status-change time, which no user call can set back, so it is opened again
instead of being read through a stale handle. One stat per use costs microseconds.

After a fork (DataLoader workers) the inherited handles are set aside unused, never closed: closing
an FFmpeg decoder joins threads that exist only in the parent (a hang), and the parent's lock may be
held. Each process opens its own.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_INHERITED: list = []  # handle tables of parent processes, kept alive on purpose (module docstring)


def file_identity(path: str) -> tuple[int, int, int, int]:
    """(inode, size in bytes, mtime ns, ctime ns) of ``path``; raises OSError when it cannot be stat'ed."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class OpenFiles:
    """Per-process least-recently-used table of open handles, keyed by the caller's key for a path."""

    def __init__(self, limit: int):
        self.limit = limit
        self._pid = -1
        self._lock = threading.RLock()
        self._open: OrderedDict[Hashable, tuple[Any, tuple[int, int, int, int]]] = OrderedDict()

    @property
    def lock(self) -> threading.RLock:
        """This process's lock: hold it while a handle is used (handles are not thread-safe)."""
        self._own()
        return self._lock

    def _own(self) -> None:
        if self._pid != os.getpid():
            _INHERITED.append(self._open)
            self._pid, self._lock, self._open = os.getpid(), threading.RLock(), OrderedDict()

    def get(self, key: Hashable, path: str, opener: Callable[[str], Any]) -> Any:
        """The open handle for ``key`` on ``path``, (re)opened with ``opener(path)`` when the table has none
        or the file changed since; call with :attr:`lock` held. Raises OSError from the stat, and whatever
        ``opener`` raises."""
        self._own()
        identity = file_identity(path)
        entry = self._open.pop(key, None)
        if entry is not None and entry[1] != identity:
            entry[0].close()
            entry = None
        handle = opener(path) if entry is None else entry[0]
        self._open[key] = (handle, identity)
        while len(self._open) > self.limit:
            self._open.popitem(last=False)[1][0].close()
        return handle

    def drop(self, key: Hashable) -> None:
        """Close ``key``'s handle, if open (after an error its state is unknown)."""
        self._own()
        entry = self._open.pop(key, None)
        if entry is not None:
            entry[0].close()

    def __len__(self) -> int:
        self._own()
        return len(self._open)
