"""The learner families, in the order the search tries them; what `search.py` and `Model.read`
use. Adding a family is one module under learners/ (see learners/base.py's Family) and one line
here (docs/architecture.md).

The set a search uses is selectable: `train(families=...)`, or the SHIPML_FAMILIES environment
variable ("linear,lightgbm" to use only those, "-mlp" to switch one off).
"""

from __future__ import annotations

from dataclasses import replace

from shipml.errors import DataError, UsageError
from shipml.learners.base import Family
from shipml.learners.lightgbm import BOOSTING, FOREST
from shipml.learners.linear import LINEAR
from shipml.learners.mlp import MLP

__all__ = ["FAMILIES", "family", "select", "configured", "load_fitted"]

FAMILIES: dict[str, Family] = {
    LINEAR.name: LINEAR,
    FOREST.name: FOREST,
    BOOSTING.name: BOOSTING,
    MLP.name: MLP,
}


def family(name: str) -> Family:
    """The family called `name` (UsageError naming the known ones otherwise)."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise UsageError(f"unknown learner family {name!r}; known: {', '.join(FAMILIES)}") from None


def select(names=None) -> tuple[str, ...]:
    """The families a search uses, in registry order. `names`: an iterable of names, or a
    string "a,b" (only those) / "-a" (all but those); None reads SHIPML_FAMILIES (default:
    every registered family)."""
    if names is None:
        from shipml.config import settings

        names = settings().families
        if not names:
            return tuple(FAMILIES)
    if isinstance(names, str):
        parts = [p.strip() for p in names.split(",") if p.strip()]
        off = {p[1:] for p in parts if p.startswith("-")}
        on = [p for p in parts if not p.startswith("-")]
        for name in [*off, *on]:
            family(name)
        return _some(tuple(n for n in FAMILIES if n not in off and (not on or n in on)), names)
    wanted = set(names)
    for name in wanted:
        family(name)
    return _some(tuple(n for n in FAMILIES if n in wanted), names)


def _some(chosen: tuple[str, ...], asked) -> tuple[str, ...]:
    if not chosen:
        raise UsageError(f"families {asked!r} leaves no learner family to search")
    return chosen


def configured(names: tuple[str, ...], options: dict | None = None) -> list[Family]:
    """The families called `names`, with the pass-through options of the underlying library
    given as `<family>__<option>` (`{"lightgbm__num_leaves": 63}`: LightGBM's own parameter,
    for every boosting configuration; DESIGN.md's rule: never a re-declared copy of them)."""
    per_family: dict[str, dict] = {}
    for key, value in (options or {}).items():
        name, sep, option = str(key).partition("__")
        if not sep or not option:
            raise UsageError(
                f"option {key!r} must be <family>__<option>, e.g. lightgbm__num_leaves"
            )
        fam = family(name)
        if not hasattr(fam, "options"):
            raise UsageError(f"learner family {name} takes no pass-through options ({key!r})")
        per_family.setdefault(name, {})[option] = value
    out = []
    for name in names:
        fam = family(name)
        if name in per_family:
            fam = replace(fam, options={**fam.options, **per_family[name]})
        out.append(fam)
    return out


def load_fitted(meta: dict, reader, task: str):
    """The stored Fitted described by a model.json member, read by the family that wrote it."""
    for fam in FAMILIES.values():
        if fam.kind == meta["kind"]:
            return fam.load(meta, reader, task)
    known = ", ".join(sorted({f.kind for f in FAMILIES.values()}))
    raise DataError(f"unknown learner kind {meta['kind']!r} in model.json (known: {known})")
