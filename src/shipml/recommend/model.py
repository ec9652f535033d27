"""RecModel: a trained recommender — top-k for a user, for a basket or session of items, and
items similar to an item — with the cold-start fallbacks, `exclude` and `filter`, the item
table's fields in every answer; stored as data only.

Answers (the interface the CLI and the server use):
- `recommend(user=, items=, k=, exclude=, filter=)`: a user the model knows gets the blend of
  its members' scores, their own items excluded; a visitor it does not know, with a basket or
  a session of items, is scored from those items (`"fallback": "session"`); with neither, the
  recently popular items (`"fallback": "popular"`). Item IDs not in the catalogue are ignored
  and listed in `"unknown_items"`.
- `similar(item=, k=, exclude=, filter=)`: the members' item-item similarity; an item of the
  item table that has no events yet is compared by its text's sentence-encoder vector
  (`"fallback": "text"`, vectors computed at training: no PyTorch at request time).

Serving speed: the events' matrix and sequences are built once at load; each request scores
one row with NumPy (one member: its scores as they are; several: their standardized blend),
masks with -inf and takes the top k with argpartition (metrics.top_k).

Storage (registry/formats.py reads it, no pickle): ID maps as JSON (users pseudonymized: a
salted SHA-256 of each ID, so the artifact never holds a raw customer ID), the events, the
popularity and the item-text vectors as .npy, the item table as JSON, each member through its
family's own artifacts; the manifest lists every file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import scipy.sparse as sp

from shipml.errors import ArtifactIntegrityError, DataError, UsageError
from shipml.identity import Registered
from shipml.learners.base import standardize_rows
from shipml.recommend.catalog import Catalog, item_texts
from shipml.recommend.interactions import Histories, Interactions, RankTargets
from shipml.recommend.metrics import top_k

__all__ = ["RecModel", "RecMember", "FORMAT", "KIND", "MAX_K", "user_key"]

FORMAT = 1
KIND = "recommend"
MAX_K = 1000
_LOG_COLUMNS = ("user", "item", "time", "weight", "event")  # how the training log was read
_EVAL_K_MAX = 20  # the largest K the evaluation summary ranks


def user_key(salt: str | None, user: str) -> str:
    """How the model stores and looks up a user ID: a salted SHA-256 (salt None: the ID)."""
    if salt is None:
        return user
    return "u:" + hashlib.sha256(f"{salt}\x00{user}".encode()).hexdigest()[:32]


@dataclass
class RecMember:
    fitted: object  # a learners.base.Recommender
    weight: float
    name: str = ""


@dataclass
class RecModel(Registered):
    """`events`: what the model knows of its users (their items, in time order; users as
    `user_key`s) — excluded from their recommendations, and the input of sequential members.
    `popular`: recent popularity per item, the answer for a visitor with no items."""

    members: list[RecMember]
    events: Interactions
    popular: np.ndarray
    info: dict = field(default_factory=dict)
    catalog: Catalog | None = None
    salt: str | None = None
    task: str = KIND
    classes: None = None

    def __post_init__(self) -> None:
        if self.catalog is None:
            self.catalog = Catalog(self.events.items, self.events.item_table)
        self.popular = np.asarray(self.popular, dtype=np.float32)
        self._user_index = {str(u): i for i, u in enumerate(self.events.users)}
        self._matrix = self.events.matrix()
        self._sequences = self.events.sequences()
        self._counts = np.bincount(self.events.item, minlength=self.events.n_items)
        self._split_members()

    # -- identity --------------------------------------------------------------------------------
    @property
    def items(self) -> np.ndarray:
        return self.events.items

    @property
    def users(self) -> np.ndarray:
        return self.events.users

    def __repr__(self) -> str:
        who = f"{self.name}/{self.version}" if self.name else "unsaved"
        blend = " + ".join(m.name for m in self.members)
        ev = self.events
        return f"<shipml.RecModel {who}: {ev.n_items:,} items, {ev.n_users:,} users, {blend}>"

    def describe(self) -> dict:
        """Key facts for reports and `models show`."""
        lineage = self.info.get("lineage", {})
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "ensemble": ", ".join(f"{m.name} ×{m.weight:.2f}" for m in self.members),
            "items": self.events.n_items,
            "users": self.events.n_users,
            "events": self.events.n_events,
            "validation": self.info.get("protocol"),
            "item texts": self.catalog.text_source,
            "trained rows": lineage.get("rows"),
            "training seconds": lineage.get("duration_s"),
            "seed": lineage.get("seed"),
            "data sha256": lineage.get("data_sha256"),
            "libraries": ", ".join(f"{k} {v}" for k, v in lineage.get("libraries", {}).items()),
        }

    # -- scoring ---------------------------------------------------------------------------------
    def scores(self, histories: Histories) -> np.ndarray:
        """(n, n_items) float32: one member's scores as they are, or the weighted blend of the
        members' per-user standardized scores (what ensemble selection chose). Members whose
        scores are the same for every user (popularity) are blended once, at load."""
        if len(self.members) == 1:
            return np.asarray(self.members[0].fitted.scores(histories), dtype=np.float32)
        total = np.repeat(self._constant[None, :], len(histories), axis=0)
        for m in self._personal:
            part = standardize_rows(m.fitted.scores(histories))
            part *= np.float32(m.weight)
            total += part
        return total

    def _split_members(self) -> None:
        """The members scoring every user alike (popularity), blended into one row now."""
        n = self.events.n_items
        self._constant = np.zeros(n, dtype=np.float32)
        self._personal = []
        for m in self.members:
            if getattr(m.fitted, "kind", None) == "popularity":
                row = standardize_rows(np.asarray(m.fitted.counts, np.float32)[None, :])[0]
                self._constant += np.float32(m.weight) * row
            else:
                self._personal.append(m)

    def _similarity(self, code: int) -> np.ndarray:
        codes = np.array([code])
        if len(self.members) == 1:
            return np.asarray(self.members[0].fitted.similar(codes), dtype=np.float32)[0].copy()
        total = sum(np.float32(m.weight) * standardize_rows(m.fitted.similar(codes))
                    for m in self.members)  # fmt: skip
        return total[0]

    def user_code(self, user) -> int:
        """The code of a user ID the model was trained on, else -1."""
        if user is None or str(user) == "":
            return -1
        return self._user_index.get(user_key(self.salt, str(user)), -1)

    def _history(self, code: int, known: list[int]) -> Histories:
        """One user's history: their events (a known user) and the request's items."""
        n = self.events.n_items
        if code >= 0 and not known:
            start, end = self._matrix.indptr[code], self._matrix.indptr[code + 1]
            row = sp.csr_matrix((self._matrix.data[start:end], self._matrix.indices[start:end],
                                 np.array([0, end - start])), shape=(1, n))  # fmt: skip
            return Histories(np.array([code]), row, [self._sequences[code]])
        given = np.array(known, dtype=np.int32)
        seq = np.concatenate([self._sequences[code], given]) if code >= 0 else given
        row = sp.csr_matrix((np.ones(len(seq), np.float32), (np.zeros(len(seq), int), seq)),
                            shape=(1, n), dtype=np.float32)  # fmt: skip
        row.sum_duplicates()
        return Histories(np.array([code]), row, [seq.astype(np.int32)])

    # -- answers ---------------------------------------------------------------------------------
    def recommend(self, user=None, items=(), k: int = 10, exclude=(), filter=None) -> dict:
        """The top `k` items for `user` (an ID the model was trained on) and/or a basket or
        session of `items`; what they already have is excluded, as are `exclude`; `filter`
        keeps items whose item-table fields match ({"category": "shoes", "in_stock": true})."""
        k = _checked_k(k)
        given, exclude = _ids(items, "items"), _ids(exclude, "exclude")
        mask = self.catalog.mask(filter)
        code = self.user_code(user)
        known = [self.catalog.index[i] for i in given if i in self.catalog.index]
        fallback = None if code >= 0 else ("session" if known else "popular")
        if fallback == "popular":
            row, seen = self.popular.copy(), np.array([], dtype=np.int32)
        else:
            hist = self._history(code, known)
            row, seen = np.array(self.scores(hist)[0], dtype=np.float32), hist.matrix.indices
        row[seen] = -np.inf
        unknown = self._drop(row, exclude, mask, given)
        return self._answer(row, k, fallback=fallback, unknown_items=unknown)

    def similar(self, item, k: int = 10, exclude=(), filter=None) -> dict:
        """The `k` items most similar to `item` (it excluded): by the members' item-item
        similarity, or — for a catalogued item without events — by its text's vector."""
        k = _checked_k(k)
        if item is None or isinstance(item, (list, tuple, dict)):
            raise UsageError(f"item must be one item ID; got {item!r}")
        item, exclude = str(item), _ids(exclude, "exclude")
        mask = self.catalog.mask(filter)
        code = self.catalog.index.get(item)
        fallback = None
        if code is not None and self._counts[code] > 0:
            row = self._similarity(code)
        else:
            row, fallback = self._text_similarity(item), "text"
        if code is not None:
            row[code] = -np.inf
        unknown = self._drop(row, exclude, mask, [])
        return self._answer(row, k, fallback=fallback, unknown_items=unknown)

    def _text_similarity(self, item: str) -> np.ndarray:
        vector = self.catalog.text_vector(item)
        if vector is None:
            if not self.catalog.knows(item):
                raise DataError(f"item {item!r} is not in the model's catalogue "
                                f"({self.events.n_items:,} items)")  # fmt: skip
            texts = self.catalog.text_vectors is not None or item_texts(self.catalog.table) is None
            why = (
                "no text in the item table to compare it by (name, description)"
                if texts
                else "the item texts were not embedded at training (see the model's notes)"
            )
            raise DataError(f"item {item!r} has no events yet and {why}: nothing to base "
                            "similar items on")  # fmt: skip
        vectors, has = self.catalog.code_vectors()
        row = vectors @ vector
        row[~has] = -np.inf
        return row

    def _drop(self, row: np.ndarray, exclude: list[str], mask, given: list[str]) -> list[str]:
        """Put the excluded and filtered-out items at -inf; the request's unknown item IDs."""
        for i in exclude:
            code = self.catalog.index.get(i)
            if code is not None:
                row[code] = -np.inf
        if mask is not None:
            row[~mask] = -np.inf
        return list(dict.fromkeys(i for i in [*given, *exclude] if not self.catalog.knows(i)))

    def _answer(self, row: np.ndarray, k: int, **extra) -> dict:
        finite = int(np.count_nonzero(np.isfinite(row)))
        best = top_k(row[None, :], min(k, finite))[0] if finite else np.array([], dtype=int)
        out = []
        for i in best:
            fields = self.catalog.fields(int(i))
            entry = {"item": str(self.items[i]), "score": float(row[i])}
            entry.update({c: v for c, v in fields.items() if c not in entry})
            out.append(entry)
        return {"items": out, **extra}

    # -- evaluation ------------------------------------------------------------------------------
    def evaluate(self, data, k: int = 10) -> dict:
        """Ranking metrics on later events (a log with the training log's columns) for the users
        the model knows: each user's new items ranked among every item (their known items
        excluded), next to the recent-popularity ranking on the same users; with counts of the
        events, users and items left out (unknown to the model, or repeats)."""
        from shipml.recommend.log import read_log

        k = _checked_k(k)
        spec = self.info.get("log") or {}
        later, _ = read_log(data, **{c: spec.get(c) for c in _LOG_COLUMNS})
        return self.evaluate_events(later, k)

    def evaluate_events(self, later: Interactions, k: int = 10) -> dict:
        """`evaluate` of later events already read (users as the log's raw IDs)."""
        from shipml.recommend.training import evaluation_summary

        k = _checked_k(k)
        targets, counts = self._later_targets(later)
        if not len(targets):
            raise DataError(f"none of the {counts['events']:,} events is of a user the model "
                            f"knows with an item new to them ({counts['unknown_users']:,} "
                            "unknown users): nothing to evaluate")  # fmt: skip
        ks = tuple(sorted({5, 10, 20, min(k, _EVAL_K_MAX)}))
        seed = int(self.info.get("lineage", {}).get("seed", 0))
        summary = evaluation_summary(self.scores, targets, self.events, ks=ks, seed=seed)
        return {**summary, "k": k, **counts}

    def _later_targets(self, later: Interactions) -> tuple[RankTargets, dict]:
        ids = [user_key(self.salt, str(u)) for u in later.users]
        ucode = np.array([self._user_index.get(u, -1) for u in ids], dtype=np.int64)[later.user]
        icode = np.array([self.catalog.index.get(str(t), -1) for t in later.items],
                         dtype=np.int64)[later.item]  # fmt: skip
        keep = (ucode >= 0) & (icode >= 0)
        had = np.zeros(len(keep), dtype=bool)
        if keep.any():
            had[keep] = np.asarray(self._matrix[ucode[keep], icode[keep]]).ravel() > 0
        scored = keep & ~had
        users = np.unique(ucode[scored])
        row = np.searchsorted(users, ucode[scored])
        target = sp.csr_matrix((np.ones(len(row), np.float32), (row, icode[scored])),
                               shape=(len(users), self.events.n_items))  # fmt: skip
        target.data[:] = 1.0
        history = Histories(users, self._matrix[users], [self._sequences[u] for u in users])
        counts = {
            "events": int(later.n_events),
            "events_scored": int(scored.sum()),
            "repeat_events": int(had.sum()),
            "unknown_users": int(len(np.unique(later.user[ucode < 0]))),
            "unknown_items": int(len(np.unique(later.item[icode < 0]))),
        }
        return RankTargets(history, target), counts

    # -- storage ---------------------------------------------------------------------------------
    def write(self, writer) -> None:
        """The model's files through an ArtifactWriter (the manifest lists each)."""
        from shipml.model import json_safe

        members = []
        for i, m in enumerate(self.members):
            meta, files = m.fitted.artifacts(f"member{i}")
            for fname, content in files.items():
                writer.write(fname, content)
            members.append({"name": m.name, "weight": m.weight, "prefix": f"member{i}", **meta})
        ev = self.events
        writer.write_json("ids.json", {"users": [str(u) for u in ev.users],
                                       "items": [str(t) for t in ev.items]})  # fmt: skip
        writer.write("events_user.npy", ev.user.astype(np.int32))
        writer.write("events_item.npy", ev.item.astype(np.int32))
        writer.write("events_weight.npy", ev.weight.astype(np.float32))
        if ev.time is not None:
            writer.write("events_time.npy", ev.time.astype(np.float64))
        writer.write("popular.npy", self.popular.astype(np.float32))
        catalog = self.catalog.write(writer)
        skip = ("name", "version", "report_path", "aliases")
        info = json_safe({k: v for k, v in self.info.items() if k not in skip})
        writer.write_json("model.json", {"format": FORMAT, "kind": KIND, "members": members,
                                         "catalog": catalog, "salt": self.salt,
                                         "info": info})  # fmt: skip

    @classmethod
    def read(cls, reader, *, name: str | None = None, version: int | None = None,
             cache: bool = True) -> RecModel:  # fmt: skip
        """The stored recommender; a damaged version fails here (ArtifactIntegrityError)."""
        try:
            return cls._read(reader, name=name, version=version)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            if isinstance(exc, (DataError, UsageError)):
                raise
            raise ArtifactIntegrityError(
                f"{reader.label}: model.json or ids.json does not describe a shipml recommender "
                f"({type(exc).__name__}: {exc})",
                path=str(reader.path),
            ) from exc

    @classmethod
    def _read(cls, reader, *, name, version) -> RecModel:
        from shipml.learners.registry import load_fitted

        spec = reader.read_json("model.json")
        if spec.get("format") != FORMAT or spec.get("kind") != KIND:
            raise DataError(f"recommender format {spec.get('format')} is not supported here")
        ids = reader.read_json("ids.json")
        items = np.array(ids["items"], dtype=object)
        time = reader.read_npy("events_time.npy") if "events_time.npy" in reader.files else None
        catalog = Catalog.read(spec.get("catalog") or {}, reader, items)
        events = Interactions(
            np.array(ids["users"], dtype=object),
            items,
            reader.read_npy("events_user.npy").astype(np.int32),
            reader.read_npy("events_item.npy").astype(np.int32),
            reader.read_npy("events_weight.npy").astype(np.float32),
            None if time is None else time.astype(np.float64),
            catalog.table,
        )
        members = [RecMember(load_fitted(m, reader, KIND), float(m["weight"]), m.get("name", ""))
                   for m in spec["members"]]  # fmt: skip
        info = dict(spec.get("info", {}), name=name, version=version)
        if "report.html" in reader.files:
            info["report_path"] = str(reader.path / "report.html")
        popular = reader.read_npy("popular.npy").astype(np.float32)
        return cls(members, events, popular, info, catalog, spec.get("salt"))


def _checked_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= k <= MAX_K:
        raise UsageError(f"k must be an integer from 1 to {MAX_K}; got {k!r}")
    return int(k)


def _ids(values, what: str) -> list[str]:
    """Item IDs of a request (one ID or a list of them), as strings."""
    if values is None:
        return []
    if isinstance(values, (str, int, np.integer)) and not isinstance(values, bool):
        return [str(values)]
    if isinstance(values, dict) or not hasattr(values, "__iter__"):
        raise UsageError(f"{what} must be a list of item IDs; got {values!r}")
    out = []
    for v in values:
        if v is None or isinstance(v, (dict, list, tuple, bool, float)):
            raise UsageError(f"{what}: each item ID must be a string or an integer; got {v!r}")
        out.append(str(v))
    return out
