"""Measurement limits as data that print themselves (OpenHTF ``validators`` style).

A limit answers two questions: does a value satisfy it (``check``) and how does it read in a
report (``describe`` / ``str``). Limits carry an optional unit; a measurement with a unit renders
its limit with that unit, and a limit whose unit differs from the measurement's is refused rather
than silently comparing milliseconds with seconds.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Real
from typing import Any


def _fmt(number: Any) -> str:
    """Short, stable rendering of a bound: ints as is, floats with up to 6 digits and a '.'."""
    if isinstance(number, str):
        return repr(number)
    if isinstance(number, bool) or not isinstance(number, Real) or isinstance(number, int):
        return str(number)
    text = f"{float(number):.6g}"
    # keep 1.0 reading as a float bound, as a reviewer wrote it
    return text + ".0" if text.lstrip("-").isdigit() else text


def _is_number(value: Any) -> bool:
    # bool is an int subclass but "True ≤ 3" is never what a reviewer means.
    return isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)


@dataclass(frozen=True)
class Limit(ABC):
    """Base of all limits. Subclasses define ``check`` and ``_text``."""

    @abstractmethod
    def check(self, value: Any) -> bool:
        """True when ``value`` satisfies the limit; False for values of the wrong kind."""

    @abstractmethod
    def _text(self, unit: str) -> str:
        """The limit as a reviewer reads it, with ``unit`` appended to every bound."""

    @property
    def unit(self) -> str:
        """The limit's own unit ('' when it takes the measurement's unit)."""
        return getattr(self, "limit_unit", "")

    def describe(self, unit: str = "") -> str:
        """Render with ``unit`` (the measurement's) unless the limit names its own."""
        if self.unit and unit and self.unit != unit:
            raise ValueError(
                f"limit {self._text(self.unit)!r} is in {self.unit!r} "
                f"but the measurement is in {unit!r}: use the same unit"
            )
        return self._text(self.unit or unit)

    def __str__(self) -> str:
        return self.describe()


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


@dataclass(frozen=True)
class AtMost(Limit):
    """value ≤ maximum."""

    maximum: float
    limit_unit: str = ""

    def check(self, value: Any) -> bool:
        """True when value is a number not above ``maximum``."""
        return _is_number(value) and value <= self.maximum

    def _text(self, unit: str) -> str:
        return "≤ " + _with_unit(_fmt(self.maximum), unit)


@dataclass(frozen=True)
class AtLeast(Limit):
    """value ≥ minimum."""

    minimum: float
    limit_unit: str = ""

    def check(self, value: Any) -> bool:
        """True when value is a number not below ``minimum``."""
        return _is_number(value) and value >= self.minimum

    def _text(self, unit: str) -> str:
        return "≥ " + _with_unit(_fmt(self.minimum), unit)


@dataclass(frozen=True)
class Between(Limit):
    """low ≤ value ≤ high (both bounds inclusive)."""

    low: float
    high: float
    limit_unit: str = ""

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"Between({self.low}, {self.high}): low bound is above high bound")

    def check(self, value: Any) -> bool:
        """True when value is a number inside the closed interval."""
        return _is_number(value) and self.low <= value <= self.high

    def _text(self, unit: str) -> str:
        return f"{_fmt(self.low)} … " + _with_unit(_fmt(self.high), unit)


@dataclass(frozen=True)
class Equals(Limit):
    """value == expected (any type: numbers, strings, booleans)."""

    expected: Any
    limit_unit: str = ""

    def check(self, value: Any) -> bool:
        """True when value equals ``expected`` (bools only equal bools)."""
        if isinstance(value, bool) != isinstance(self.expected, bool):
            return False
        return value == self.expected

    def _text(self, unit: str) -> str:
        return "= " + _with_unit(_fmt(self.expected), unit)
