"""``torch.save`` files read with torch's weights-only unpickler, and nothing else.

Training checkpoints often hold a few plain Python or numpy objects next to the weights: the
run's ``argparse.Namespace`` saved as ``args``, a metric logged as ``numpy.float64``, a
``pathlib`` path. The weights-only unpickler refuses every class it does not know, and used to
refuse such a file outright. For the classes in :data:`DATA_ONLY_GLOBALS` it now gets an inert
stand-in instead (:class:`DataStandIn`): the pickle may construct it and set its state, which
only stores the arguments it is given. The real class is never imported or called, and the
unpickler still does not accept any other global, so no code from the file runs, and the
objects take no part in what is loaded (the weights are tensors). Any other class or function
is refused with a message that names it and says how to extract the tensors from a trusted
file; a checkpoint that would call something like ``os.system`` or ``exec`` is refused without
that advice.

torch's allow-list is process-wide and its ``safe_globals`` context is not thread-safe (two
overlapping uses can remove each other's entries, or, in some torch versions, leave them behind
for good). liv's uses are therefore serialised by one lock, so liv reads one pickle at a time per
process, and after each one no stand-in is left on the list. Caveat: a ``torch.load`` in another
thread that does not go through liv still sees the stand-ins while liv is reading (and so also
runs nothing for these classes), and other code changing the allow-list at that very moment is
not covered by liv's lock.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from liv.checkpoints.errors import CheckpointError

__all__ = ["DATA_ONLY_GLOBALS", "DataStandIn", "extraction_hint", "load_weights_only"]

DATA_ONLY_GLOBALS = (
    "argparse.Namespace",
    # numpy scalars and arrays; numpy 2 renamed numpy.core to numpy._core.
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    # Python 3.13 defines the concrete path classes in pathlib._local.
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
    "pathlib._local.PurePosixPath",
    "pathlib._local.PureWindowsPath",
)

# Only for choosing the message: safety comes from the allow-list, not from this list.
_CODE_MODULES = frozenset({
    "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "importlib", "runpy", "pty",
    "ctypes", "pickle", "marshal", "code", "codeop", "webbrowser",
})
_CODE_BUILTINS = frozenset({
    "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr", "globals",
    "locals", "vars", "breakpoint", "input", "exit", "quit", "help",
})


class DataStandIn:
    """Takes the place of one class of :data:`DATA_ONLY_GLOBALS` while unpickling.

    Whatever the pickle passes to it (constructor arguments, then its state) is stored in
    ``args`` and ``state`` and never interpreted. ``stands_for`` names the real class.
    """

    stands_for = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> DataStandIn:
        self = super().__new__(cls)
        self.args, self.state = args, None
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # __new__ has kept the arguments; object.__init__ would reject them

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.stands_for}, not loaded>"


def _stand_in(full_name: str) -> type:
    module, _, name = full_name.rpartition(".")
    # torch's allow-list matches a class by f"{__module__}.{__qualname__}".
    return type(name, (DataStandIn,), {"__module__": module, "__qualname__": name,
                                       "stands_for": full_name})


_STAND_INS = [_stand_in(n) for n in DATA_ONLY_GLOBALS]


_ALLOW_LIST_LOCK = threading.Lock()


@contextlib.contextmanager
def _with_stand_ins() -> Iterator[None]:
    """The stand-ins on torch's allow-list for the duration; only one thread at a time."""
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:
        # torch < 2.5 has only a permanent, process-wide allow-list: refuse those files there.
        yield
        return
    with _ALLOW_LIST_LOCK:
        try:
            with safe_globals(_STAND_INS):
                yield
        finally:
            _remove_stand_ins()


def _remove_stand_ins() -> None:
    # torch versions whose safe_globals restores a snapshot on exit would put back stand-ins that
    # a snapshot taken during another load still held; whatever the version, none may outlive a load.
    now = torch.serialization.get_safe_globals()
    kept = [g for g in now if not (isinstance(g, type) and issubclass(g, DataStandIn))]
    if len(kept) != len(now):
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(kept)


def load_weights_only(p: Path) -> Any:
    """``torch.load(p, weights_only=True)`` on the CPU, with stand-ins for the data-only classes.

    Raises :class:`CheckpointError` naming ``p`` when the file needs any other class or function
    (the message names them and, unless they run code, how to extract the tensors), when the
    unpickler refuses it for another reason, or when it is corrupt or truncated.
    """
    try:
        with _with_stand_ins():
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        found = re.search(r"GLOBAL ([\w.]+)", msg)
        if found:
            # from None: torch's message suggests weights_only=False, exactly what not to do.
            raise CheckpointError(p, _refusal(p, found.group(1))) from None
        detail = re.search(r"WeightsUnpickler error: ([^\n]*)", msg)
        reason = detail.group(1) if detail else msg.splitlines()[0] if msg else type(e).__name__
        raise CheckpointError(p, f"refused by the weights-only unpickler: {reason}") from None
    except Exception as e:  # anything else torch.load trips on means a damaged file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(p, f"corrupt or truncated checkpoint ({first})") from e


def _refusal(p: Path, first: str) -> str:
    names = [first] + sorted(set(_unsafe_globals(p)) - {first})
    shown = ", ".join(repr(n) for n in names[:6]) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
    if any(_runs_code(n) for n in names):
        return (f"refused: unpickling it would call {shown}, which could execute code; "
                "a checkpoint has no reason to, so do not load this file")
    return (f"refused: unpickling it would import or call {shown}, which could execute code. "
            "If you trust this file, extract its tensors in a trusted session and load the "
            f"result instead: {extraction_hint(p)}")


def _unsafe_globals(p: Path) -> list[str]:
    # Only lists the names (a static scan of the pickle): every one goes into the message at once.
    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if find is None:
        return []
    try:
        with _with_stand_ins():
            return list(find(str(p)))
    except Exception:  # legacy (non-zip) files, or a pickle the scan cannot follow
        return []


def _runs_code(full_name: str) -> bool:
    module, _, name = full_name.rpartition(".")
    if module in ("builtins", "__builtin__"):
        return name in _CODE_BUILTINS
    return module.split(".")[0] in _CODE_MODULES


def extraction_hint(p: Path) -> str:
    """A shell command that re-saves the dicts and tensors of ``p`` as ``<stem>.weights.pt`` next
    to it, which liv then reads. Objects with a ``state_dict()`` method (a whole pickled
    ``nn.Module``, from ``torch.save(model)``, at the top or nested) are replaced by their state
    dicts; every other object is dropped. It unpickles ``p`` with all its code, so it is only for a
    file the user trusts."""
    out = p.with_name(p.stem + ".weights.pt")
    code = ("import torch; m = lambda o: callable(getattr(o, \"state_dict\", None)); "
            "t = lambda o: t(o.state_dict()) if m(o) else {k: t(v) for k, v in o.items() "
            "if m(v) or isinstance(v, (dict, torch.Tensor))} if isinstance(o, dict) else o; "
            f"torch.save(t(torch.load({json.dumps(str(p))}, weights_only=False)), "
            f"{json.dumps(str(out))})")
    return f"python -c {shlex.quote(code)}"
