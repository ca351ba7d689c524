"""Command-line options and ini keys of the hil plugin, declared as data.

Every option is ``--hil-<name>`` on the command line and ``hil_<name>`` in pytest.ini (the command
line wins). Areas own their options: this module only knows how to register a spec and read it back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import pytest


@dataclass(frozen=True)
class OptionSpec:
    """One harness option: ``--hil-<name>`` / ini ``hil_<name>``."""

    name: str
    help: str
    default: Any = None
    action: str = "store"  # store | append | store_true
    type: Callable[[str], Any] | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--hil-" + self.name

    @property
    def dest(self) -> str:
        return "hil_" + self.name.replace("-", "_")

    def ini_type(self) -> Literal["args", "bool", "string"]:
        if self.action == "append":
            return "args"
        if self.action == "store_true":
            return "bool"
        return "string"


def register_options(parser: pytest.Parser, specs: Iterable[OptionSpec]) -> None:
    """Add every spec to the ``hil`` option group and as an ini key."""
    group = parser.getgroup("hil", "hil hardware-in-the-loop harness")
    for spec in specs:
        kwargs: dict[str, Any] = {"dest": spec.dest, "help": spec.help, "action": spec.action}
        if spec.action != "store_true":
            kwargs["metavar"] = spec.metavar
            if spec.type is not None:
                kwargs["type"] = spec.type
        # Defaults are applied in read_option so that the ini value can sit between them.
        kwargs["default"] = [] if spec.action == "append" else None
        group.addoption(spec.flag, **kwargs)
        parser.addini(spec.dest, help=spec.help, type=spec.ini_type(), default=None)


def read_option(config: pytest.Config, spec: OptionSpec) -> Any:
    """Value of ``spec``: command line, else ini, else the declared default."""
    value = config.getoption(spec.dest)
    if value not in (None, []):
        return value
    ini = config.getini(spec.dest)
    if ini not in (None, [], ""):
        if spec.type is not None and isinstance(ini, str):
            return spec.type(ini)
        return ini
    return spec.default
