"""Command-line arguments generated from typed config dataclasses.

A config is a dataclass whose fields have types and defaults, each followed by a docstring (a string
literal on the next line, as in ``liv.models.clip.CLIPConfig``). Those docstrings become the
``--help`` text, so the documentation of an option lives in exactly one place. A field marked with
``metadata={"positional": True}`` becomes a positional argument.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")


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


def _argument_spec(tp: Any) -> dict[str, Any]:
    """argparse keyword arguments (type, nargs, choices, action) for a field type."""
    tp, _ = _unwrap_optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is Literal:
        return {"type": type(args[0]), "choices": list(args)}
    if origin is tuple and args and args[-1] is not Ellipsis:
        return {"type": _scalar(args[0]), "nargs": len(args)}
    if origin in (list, tuple):
        # extend: `--goal a --goal b` and `--goal a b` both give [a, b]
        return {"type": _scalar(args[0] if args else str), "nargs": "+", "action": "extend"}
    return {"type": _scalar(tp)}


def _scalar(tp: Any) -> Any:
    if tp in (int, float, str):
        return tp
    if tp is Path or (isinstance(tp, type) and issubclass(tp, Path)):
        return Path
    raise TypeError(f"unsupported config field type for the command line: {tp!r}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, only_given: bool = False) -> None:
    """Add one option per field of dataclass ``cls`` to ``parser`` (``foo_bar`` -> ``--foo-bar``).

    ``only_given``: options left out do not appear in the parsed namespace (their defaults are still
    shown in --help), so a caller can tell explicit values from defaults, e.g. to apply a preset.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        spec = _argument_spec(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = docs.get(f.name, f.metadata.get("help", ""))
        if has_default and default not in (None, [], ()) and spec.get("action") is not argparse.BooleanOptionalAction:
            help_text += f" (default: {default})"
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
