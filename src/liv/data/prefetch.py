"""Reading ahead in a background thread: the next chunk of frames decodes while the caller encodes
this one. Video decoding (PyAV) and torch's kernels both release the GIL, so the two overlap."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


def read_ahead_depth(device: torch.device | str | None) -> int:
    """How far scoring should read ahead for a model on ``device``: 1 on an accelerator, where decoding
    on the CPU overlaps the device's work; 0 on the CPU (or None), where decoding and encoding compete
    for the same cores (bench/score_speed.py on 2 cores: 1.03x with 2 torch threads, 0.86x with 1)."""
    return 0 if device is None or torch.device(device).type == "cpu" else 1


def read_ahead(items: Iterable[T], read: Callable[[T], R], depth: int = 1) -> Iterator[R]:
    """``read(item)`` for each item, in order, computed ahead in one background thread.

    At most ``depth`` results wait in a queue and one more is being read, so up to ``depth + 2``
    results are alive at once with the one the caller holds (memory: whole episodes, when an item
    is an episode). ``depth`` 0 reads in the caller's thread (no thread). An exception raised by
    ``read`` is raised here, at the item it belongs to. Leaving the loop early stops the thread
    after its current read. Only the background thread calls ``read``, so sources that are not
    thread-safe stay safe as long as the caller does not read from them meanwhile.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if depth == 0:
        for item in items:
            yield read(item)
        return
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put((read(item), None))
        except BaseException as error:  # handed to the consumer, raised there
            results.put((None, error))
            return
        results.put((_DONE, None))

    thread = threading.Thread(target=produce, name="liv-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            value, error = results.get()
            if error is not None:
                raise error
            if value is _DONE:
                return
            yield value
    finally:
        stop.set()
        # (never wait for ourselves: a generator collected in the producer thread is closed there)
        while thread.is_alive() and threading.current_thread() is not thread:  # unblock a producer waiting on a full queue, then let it finish
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass
        if threading.current_thread() is not thread:
            thread.join()
