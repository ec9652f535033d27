"""The learner families, in the order the search tries them; what `search.py` and `Model.read`
use. Adding a family is one module under learners/ (see learners/base.py's Family) and one line
here (docs/architecture.md).

Each task kind has its own families: FAMILIES for `supervised` (rows of features -> labels or
numbers), RECOMMENDERS for `recommend` (user-item logs -> ranked items). The set a search uses
is selectable: `train(families=...)`, or the SHIPML_FAMILIES environment variable
("linear,lightgbm" to use only those, "-mlp" to switch one off; names of another kind's
families are ignored there).
"""

from __future__ import annotations

from dataclasses import replace

from shipml.errors import DataError, UsageError
from shipml.learners.base import Family
from shipml.learners.cnn import CNN
from shipml.learners.ease import EASE
from shipml.learners.image_finetune import FINETUNE
from shipml.learners.implicit_mf import ALS, BPR
from shipml.learners.itemknn import ITEMKNN
from shipml.learners.lightgbm import BOOSTING, FOREST
from shipml.learners.linear import LINEAR
from shipml.learners.mlp import MLP
from shipml.learners.popularity import POPULARITY
from shipml.learners.sasrec import SASREC
from shipml.learners.transitions import TRANSITIONS

__all__ = ["FAMILIES", "RECOMMENDERS", "KINDS", "family", "select", "configured", "load_fitted"]

FAMILIES: dict[str, Family] = {
    LINEAR.name: LINEAR,
    FOREST.name: FOREST,
    BOOSTING.name: BOOSTING,
    MLP.name: MLP,
    CNN.name: CNN,
    FINETUNE.name: FINETUNE,
}

RECOMMENDERS: dict[str, Family] = {
    POPULARITY.name: POPULARITY,
    ITEMKNN.name: ITEMKNN,
    EASE.name: EASE,
    ALS.name: ALS,
    BPR.name: BPR,
    TRANSITIONS.name: TRANSITIONS,
    SASREC.name: SASREC,
}

#: task kind (tasks.py) -> its families
KINDS: dict[str, dict[str, Family]] = {"supervised": FAMILIES, "recommend": RECOMMENDERS}


def family(name: str, kind: str = "supervised") -> Family:
    """The family called `name` of task kind `kind` (UsageError naming the known ones)."""
    known = KINDS[kind]
    try:
        return known[name]
    except KeyError:
        raise UsageError(f"unknown learner family {name!r}; known: {', '.join(known)}") from None


def select(names=None, kind: str = "supervised") -> tuple[str, ...]:
    """The families of task kind `kind` a search uses, in registry order. `names`: an iterable
    of names, or a string "a,b" (only those) / "-a" (all but those); None reads SHIPML_FAMILIES
    (default: every registered family of the kind)."""
    known = KINDS[kind]
    if names is None:
        from shipml.config import settings

        names = settings().families
        if not names:
            return tuple(known)
        names = _own(names, kind)
        if not names:
            return tuple(known)
    if isinstance(names, str):
        parts = [p.strip() for p in names.split(",") if p.strip()]
        off = {p[1:] for p in parts if p.startswith("-")}
        on = [p for p in parts if not p.startswith("-")]
        for name in [*off, *on]:
            family(name, kind)
        return _some(tuple(n for n in known if n not in off and (not on or n in on)), names)
    wanted = set(names)
    for name in wanted:
        family(name, kind)
    return _some(tuple(n for n in known if n in wanted), names)


def _own(names: str, kind: str) -> str:
    """SHIPML_FAMILIES without the names that belong to another task kind only."""
    others = {n for k, fams in KINDS.items() if k != kind for n in fams} - set(KINDS[kind])
    parts = [p.strip() for p in names.split(",") if p.strip()]
    return ",".join(p for p in parts if p.lstrip("-") not in others)


def _some(chosen: tuple[str, ...], asked) -> tuple[str, ...]:
    if not chosen:
        raise UsageError(f"families {asked!r} leaves no learner family to search")
    return chosen


def configured(names: tuple[str, ...], options: dict | None = None,
               kind: str = "supervised") -> list[Family]:  # fmt: skip
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
        fam = family(name, kind)
        if not hasattr(fam, "options"):
            raise UsageError(f"learner family {name} takes no pass-through options ({key!r})")
        per_family.setdefault(name, {})[option] = value
    out = []
    for name in names:
        fam = family(name, kind)
        if name in per_family:
            fam = replace(fam, options={**fam.options, **per_family[name]})
        out.append(fam)
    return out


def load_fitted(meta: dict, reader, task: str):
    """The stored Fitted described by a model.json member, read by the family that wrote it."""
    every = [f for fams in KINDS.values() for f in fams.values()]
    for fam in every:
        if fam.kind == meta["kind"]:
            return fam.load(meta, reader, task)
    known = ", ".join(sorted({f.kind for f in every}))
    raise DataError(f"unknown learner kind {meta['kind']!r} in model.json (known: {known})")
