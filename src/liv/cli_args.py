"""Command-line arguments generated from typed config dataclasses.

A config is a dataclass whose fields have types and defaults, each followed by a docstring (a string
literal on the next line, as in ``liv.models.clip.CLIPConfig``). Those docstrings become the
``--help`` text, so the documentation of an option lives in exactly one place. A field marked with
``metadata={"positional": True}`` becomes a positional argument.

What a value must be is declared in the same place, in the field's metadata, and checked where the
value is parsed, so that a mistake is answered with the option's name before any work starts:

- ``"min"``, ``"max"`` (inclusive), ``"gt"``, ``"lt"`` (exclusive): bounds of a number;
- ``"choices"``: the allowed values (a ``Literal`` type declares them too);
- ``"path"``: what a path must be, one of :data:`PATH_KINDS`;
- ``"check"``: a function of the value returning what is wrong with it, or None (e.g. a device name).

Without any metadata, a text must not be empty or blank, a path must not be empty and a float must be
finite. The same constraints check a dataclass built in code (:func:`check_fields`).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import math
import operator
import os
import re
import textwrap
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")

PATH_KINDS = {
    "exists": "an existing file or folder",
    "file": "an existing file",
    "dir": "an existing folder",
    "out": "a file or folder to write, whose parent folder exists or can be created",
    "out_dir": "a folder to write into: not an existing file, and its parent exists or can be created",
    "out_file": "a file to write: not an existing folder, and its parent exists or can be created",
}
"""Values of the ``"path"`` metadata key."""
_BOUNDS = {"gt": (">", operator.gt), "min": (">=", operator.ge), "lt": ("<", operator.lt),
           "max": ("<=", operator.le)}
_METADATA_KEYS = {*_BOUNDS, "choices", "path", "check", "positional", "help"}


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Map field name -> the docstring written under it in the class body ({} if the source is absent)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else tp), True
    return tp, False


def _argument_spec(tp: Any, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """argparse keyword arguments (type, nargs, choices, action) for a field type and its constraints."""
    tp, _ = _unwrap_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is Literal:
        return {"type": _converter(type(args[0]), metadata), "choices": list(args)}
    if origin is tuple and args and args[-1] is not Ellipsis:
        return {"type": _converter(_scalar(args[0]), metadata), "nargs": len(args)}
    if origin in (list, tuple):
        # extend: `--goal a --goal b` and `--goal a b` both give [a, b]
        return {"type": _converter(_scalar(args[0] if args else str), metadata), "nargs": "+", "action": "extend"}
    return {"type": _converter(_scalar(tp), metadata)}


def _scalar(tp: Any) -> Any:
    if tp in (int, float, str):
        return tp
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        return Path
    raise TypeError(f"unsupported config field type for the command line: {tp!r}")


def _converter(scalar: type, metadata: Mapping[str, Any]) -> Callable[[str], Any]:
    """argparse ``type``: the value of one command-line word, checked; ArgumentTypeError says what is wrong
    (argparse puts the option's name in front)."""
    def convert(text: str) -> Any:
        value: Any = text
        if scalar in (int, float):
            try:
                value = scalar(text)
            except ValueError:
                noun = "an integer" if scalar is int else "a number"
                raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None
        elif scalar is Path:
            if not text.strip():  # Path("") is ".", the current folder: refuse it before it becomes that
                raise argparse.ArgumentTypeError(f"must not be empty, got {text!r}")
            value = Path(text)
        problem = value_problem(value, metadata)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    convert.__name__ = scalar.__name__  # argparse names the type in its own messages
    return convert


def value_problem(value: Any, metadata: Mapping[str, Any]) -> str | None:
    """What is wrong with one value of a field, or None: the rules for its type (a text not empty or blank,
    a float finite), then the constraints declared in the field's ``metadata`` (see the module docstring).

    Phrased to follow the field's name: ``"must be >= 1, got 0"``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and not value.strip():
        return f"must not be empty, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if isinstance(value, (int, float)):
        bounds = [(word, metadata[key], test) for key, (word, test) in _BOUNDS.items() if key in metadata]
        if not all(test(value, bound) for _, bound, test in bounds):
            return f"must be {' and '.join(f'{word} {bound}' for word, bound, _ in bounds)}, got {value}"
    choices = metadata.get("choices")
    if choices is not None and value not in choices:
        return f"must be one of {', '.join(map(str, choices))}; got {value!r}"
    if isinstance(value, Path) and "path" in metadata:
        return path_problem(value, metadata["path"])
    if "check" in metadata:
        return metadata["check"](value)
    return None


def path_problem(path: Path, kind: str) -> str | None:
    """What keeps ``path`` from being ``kind`` (a key of :data:`PATH_KINDS`), or None.

    An output's parent folders need not exist, but the nearest one that does must be a folder this
    process can write in: otherwise the command would fail only when it writes, after its work.
    """
    try:
        if kind in ("exists", "file", "dir") and not path.exists():
            return f"{path} does not exist"
        if kind == "file" and path.is_dir():
            return f"{path} is a folder, not a file"
        if kind == "dir" and not path.is_dir():
            return f"{path} is a file, not a folder"
        if kind == "out_dir" and path.exists() and not path.is_dir():
            return f"{path} is an existing file, not a folder"
        if kind == "out_file" and path.is_dir():
            return f"{path} is a folder; give a file name"
        if kind.startswith("out"):
            absolute = Path(os.path.abspath(path))
            existing = next(p for p in absolute.parents if p.exists())  # "/" exists
            if not existing.is_dir():
                return f"cannot create {path}: {existing} is a file"
            target = absolute if absolute.is_dir() else existing
            if not os.access(target, os.W_OK | os.X_OK):
                return f"cannot create {path}: no permission to write in {target}"
    except OSError as e:  # e.g. a parent folder that cannot be searched
        return f"cannot access {path} ({e.strerror or e})"
    return None


def check_path(path: Path, kind: str, option: str) -> None:
    """Raise ValueError ``"<option>: <what is wrong>"`` unless ``path`` is ``kind`` (see :func:`path_problem`):
    for an option whose kind depends on others (``liv reward --out``: a folder, or with --data a file)."""
    problem = path_problem(path, kind)
    if problem:
        raise ValueError(f"{option}: {problem}")


def option_name(f: dataclasses.Field) -> str:
    """How a field is named on the command line: ``--foo-bar``, or ``foo_bar`` for a positional argument
    (as argparse names it in its messages)."""
    return f.name if f.metadata.get("positional") else "--" + f.name.replace("_", "-")


def _check_metadata(cls: type, f: dataclasses.Field) -> None:
    unknown = set(f.metadata) - _METADATA_KEYS
    if unknown:
        raise TypeError(f"{cls.__name__}.{f.name}: unknown metadata {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(_METADATA_KEYS))}")
    if "path" in f.metadata and f.metadata["path"] not in PATH_KINDS:
        raise TypeError(f"{cls.__name__}.{f.name}: path kind {f.metadata['path']!r} is not one of "
                        f"{', '.join(PATH_KINDS)}")


def check_fields(obj: Any, as_options: bool = False) -> None:
    """Check every field of the dataclass instance ``obj`` as the command line checks its options, except
    ``"path"`` kinds: a config may be written before its files exist, and readers and writers name a
    missing file themselves.

    Raises ValueError ``"<field>: <what is wrong>"`` (``--<option>: ...`` with ``as_options``) for the
    first bad value.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        tp, _ = _unwrap_optional(hints[f.name])
        metadata = {k: v for k, v in f.metadata.items() if k != "path"}
        if typing.get_origin(tp) is Literal:
            metadata.setdefault("choices", typing.get_args(tp))
        value = getattr(obj, f.name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            problem = None if v is None else value_problem(v, metadata)
            if problem:
                raise ValueError(f"{option_name(f) if as_options else f.name}: {problem}")


class UsageError(Exception):
    """A command line that cannot be parsed; the message is one line ``PROG: error: ...``."""


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors raise :class:`UsageError` (one line, no usage block) instead of
    printing a usage block and exiting, so the caller reports them like every other error.

    ``--help`` and ``--version`` still print and exit (SystemExit 0).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-4" for an option ("--lr: expected one argument"): only "-1" and "-.5" look
        # like numbers to it. A negative number in any float notation is a value.
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message: str) -> typing.NoReturn:
        # argparse writes "argument --goal: ..."; the option's name alone reads better.
        message = message.removeprefix("argument ")
        if message.startswith(("the following arguments are required", "unrecognized arguments")):
            message += f" (`{self.prog} --help` lists the options)"  # the usage block argparse would print
        raise UsageError(f"{self.prog}: error: {message}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, only_given: bool = False) -> None:
    """Add one option per field of dataclass ``cls`` to ``parser`` (``foo_bar`` -> ``--foo-bar``).

    ``only_given``: options left out do not appear in the parsed namespace (their defaults are still
    shown in --help), so a caller can tell explicit values from defaults, e.g. to apply a preset.
    Each value is checked as it is parsed (see the module docstring); with :class:`ArgumentParser`, a bad
    one raises UsageError naming the option. Raises TypeError for a field type the command line cannot
    express or unknown metadata.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        _check_metadata(cls, f)
        spec = _argument_spec(hints[f.name], f.metadata)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = docs.get(f.name, f.metadata.get("help", ""))
        notes = [" and ".join(f"{word} {f.metadata[key]}" for key, (word, _) in _BOUNDS.items() if key in f.metadata)]
        if has_default and default not in (None, [], ()) and spec.get("action") is not argparse.BooleanOptionalAction:
            notes.append(f"default: {default}")
        if any(notes):
            help_text += f" ({'; '.join(n for n in notes if n)})"
        help_text = help_text.replace("%", "%%")  # argparse %-formats help: "20-60% of" must print as written
        if f.metadata.get("positional"):
            if not has_default:
                parser.add_argument(f.name, help=help_text, **spec)
            else:
                parser.add_argument(f.name, help=help_text, default=default, nargs="?", **spec)
            continue
        flag = "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"dest": f.name, "help": help_text, **spec}
        if has_default:
            # extend would append to a non-empty list default: give argparse None and let the dataclass
            # default apply when the option is absent (see given_fields)
            kwargs["default"] = argparse.SUPPRESS if only_given else (None if spec.get("action") == "extend" else default)
        else:
            kwargs["required"] = True
        parser.add_argument(flag, **kwargs)


def given_fields(cls: type, namespace: argparse.Namespace) -> dict[str, Any]:
    """Field values present in ``namespace`` (tuples converted from lists), keyed by field name."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.init and hasattr(namespace, f.name):
            value = getattr(namespace, f.name)
            if value is None and f.default_factory is not dataclasses.MISSING:
                continue  # an absent list option: the dataclass's default applies
            tp, _ = _unwrap_optional(hints[f.name])
            values[f.name] = tuple(value) if typing.get_origin(tp) is tuple and value is not None else value
    return values


def dataclass_from_args(cls: type[T], namespace: argparse.Namespace) -> T:
    """Build ``cls`` from the parsed namespace (tuple fields are converted from lists)."""
    return cls(**given_fields(cls, namespace))
