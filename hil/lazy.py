"""Package re-exports imported on first use (PEP 562), for the packages the pytest plugin reaches in
every run: ``import hil.server.options`` runs ``hil/server/__init__``, which must not load flask for it.

A package keeps its names visible to readers and mypy in an ``if TYPE_CHECKING:`` block and sets
``__getattr__ = lazy_exports(__name__, {...})``. A name that is also one of its submodules' names
(``hil.board.inventory``) must stay an eager import: once that submodule is imported, the package's
attribute is the module and ``__getattr__`` is never asked (selftest/imports checks the exports).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for *package*: each name of *sources* (``"module"`` or
    ``"module:attribute"`` when it is re-exported under another name) is imported on first use and
    then kept as an ordinary attribute of the package."""

    def __getattr__(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = sources[name].partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
