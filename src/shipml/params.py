"""Declared parameter constraints, checked once at the start of a public call (in the style of
scikit-learn's `utils/_param_validation.py`): a table of parameter -> allowed values, and one
check raising UsageError that names the parameter, what it got and what is allowed.

    >>> from numbers import Real
    >>> check_params({"time_budget": [Interval(Real, 0, None, closed="neither")]},
    ...              {"time_budget": -1})
    Traceback (most recent call last):
    ...
    shipml.errors.UsageError: time_budget must be a number > 0; got -1
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real

from shipml.errors import UsageError

__all__ = ["Interval", "Options", "Names", "check_params"]


@dataclass(frozen=True)
class Interval:
    """A number of `kind` (Integral or Real; bools are neither) between `left` and `right`
    (None: unbounded); `closed` is "both", "left", "right" or "neither"."""

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if isinstance(value, Real) and math.isnan(value):
            return False
        low_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        high_ok = self.right is None or (
            value <= self.right if self.closed in ("both", "right") else value < self.right
        )
        return low_ok and high_ok

    def __str__(self) -> str:
        what = "an integer" if self.kind is Integral else "a number"
        bounds = []
        if self.left is not None:
            bounds.append(f"{'>=' if self.closed in ('both', 'left') else '>'} {self.left:g}")
        if self.right is not None:
            bounds.append(f"{'<=' if self.closed in ('both', 'right') else '<'} {self.right:g}")
        return f"{what} {' and '.join(bounds)}".strip()


@dataclass(frozen=True)
class Options:
    """One of a few strings."""

    values: tuple[str, ...]

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and value in self.values

    def __str__(self) -> str:
        return "one of " + ", ".join(self.values)


@dataclass(frozen=True)
class Names:
    """Column names: a string or a list/tuple of strings (`single=True`: one string only)."""

    single: bool = False

    def accepts(self, value: object) -> bool:
        if isinstance(value, str):
            return True
        return (
            not self.single
            and isinstance(value, (list, tuple))
            and all(isinstance(v, str) for v in value)
        )

    def __str__(self) -> str:
        return "a column name" if self.single else "a column name or a list of them"


def _accepts(constraint: object, value: object) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (
            isinstance(value, bool) and constraint is not bool
        )
    if constraint == "callable":
        return callable(value)
    return constraint.accepts(value)


def _describe(constraint: object) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        names = {str: "a string", bool: "True or False", dict: "a dict", list: "a list",
                 tuple: "a tuple", Integral: "an integer", Real: "a number"}  # fmt: skip
        return names.get(constraint, f"a {constraint.__name__}")
    return str(constraint)


def check_params(constraints: Mapping[str, Iterable], values: Mapping[str, object]) -> None:
    """UsageError for the first of `values` that none of its constraints accepts."""
    for name, allowed in constraints.items():
        if name not in values:
            continue
        value, allowed = values[name], list(allowed)
        if not any(_accepts(c, value) for c in allowed):
            what = " or ".join(_describe(c) for c in allowed)
            raise UsageError(f"{name} must be {what}; got {value!r}")
