"""Package attributes imported on first use (PEP 562), so that ``import liv`` stays fast.

``import liv`` and ``liv --help`` must not import torch (seconds) or the readers' libraries: each
package names its public attributes and the submodule defining each, and imports that submodule only
when the attribute is first read. Any submodule is an attribute as well (``liv.data.images`` after a
bare ``import liv``), as it would be after an explicit import.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, exports: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package named ``package``.

    ``exports`` maps each public name to the submodule, relative to the package, that defines it
    (``{"open_dataset": "open"}``). A name that is neither exported nor a submodule raises
    AttributeError as usual; private names (``_x``) are never imported, so ``liv.__main__`` is not run
    by an attribute lookup. A value, once imported, is stored on the package: later reads are plain.
    """
    module = sys.modules[package]
    submodules: set[str] = set()

    def names_of_submodules() -> set[str]:
        if not submodules:  # listed once: a folder read, only when a lookup misses
            submodules.update(m.name for m in pkgutil.iter_modules(module.__path__) if not m.name.startswith("_"))
        return submodules

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        elif not name.startswith("_") and name in names_of_submodules():
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *exports, *names_of_submodules()})

    return __getattr__, __dir__
