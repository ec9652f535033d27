"""RecModel: a trained recommender — top-k for a user, for a basket or session of items, and
items similar to an item; stored as data only (ID maps as JSON, arrays as .npy).

SPINE. To be completed (issue 15, parts 4-6): cold start by item text, `filter`, names from the
item table, evaluate(), the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shipml.learners.base import standardize_rows
from shipml.recommend.interactions import Histories, Interactions
from shipml.recommend.metrics import top_k

__all__ = ["RecModel", "RecMember", "FORMAT"]

FORMAT = 1
KIND = "recommend"


@dataclass
class RecMember:
    fitted: object  # a learners.base.Recommender
    weight: float
    name: str = ""


@dataclass
class RecModel:
    """`events`: what the model knows of its users (their items, in time order) — excluded
    from their recommendations, and the input of the sequential members."""

    members: list[RecMember]
    events: Interactions
    popular: np.ndarray  # (n_items,) recent popularity: the fallback for unknown users
    info: dict = field(default_factory=dict)
    task: str = KIND
    classes: None = None

    @property
    def items(self) -> np.ndarray:
        return self.events.items

    @property
    def users(self) -> np.ndarray:
        return self.events.users

    @property
    def name(self) -> str | None:
        return self.info.get("name")

    @property
    def version(self) -> int | None:
        return self.info.get("version")

    @property
    def metrics(self) -> dict:
        return self.info.get("metrics", {})

    def __post_init__(self) -> None:
        self._user_index = {u: i for i, u in enumerate(self.events.users)}
        self._item_index = {t: i for i, t in enumerate(self.events.items)}
        self._matrix = self.events.matrix()
        self._sequences = self.events.sequences()

    # -- scoring -------------------------------------------------------------------------------
    def scores(self, histories: Histories) -> np.ndarray:
        """The blend of the members' standardized scores (what ensemble selection chose)."""
        total = None
        for m in self.members:
            part = m.weight * standardize_rows(m.fitted.scores(histories))
            total = part if total is None else total + part
        return total

    def _history(self, user: str | None, items: list[str]) -> tuple[Histories, str | None, list]:
        known = [self._item_index[i] for i in items if i in self._item_index]
        unknown = [i for i in items if i not in self._item_index]
        if user is not None and str(user) in self._user_index:
            u = self._user_index[str(user)]
            seq = np.concatenate([self._sequences[u], np.array(known, dtype=np.int32)])
            code = u
        else:
            seq, code = np.array(known, dtype=np.int32), -1
        n = self.events.n_items
        row = sp.csr_matrix((np.ones(len(seq), np.float32), (np.zeros(len(seq), int), seq)),
                            shape=(1, n))  # fmt: skip
        fallback = None
        if code == -1:
            fallback = "session" if len(seq) else "popular"
        return Histories(np.array([code]), row, [seq.astype(np.int32)]), fallback, unknown

    def recommend(self, user: str | None = None, items=(), k: int = 10, exclude=()) -> dict:
        """The top `k` items for `user` (an ID the model was trained on) and/or a basket or
        session of `items`; the items they already have are excluded, as are `exclude`."""
        hist, fallback, unknown = self._history(user, [str(i) for i in items])
        if fallback == "popular":
            scores = self.popular[None, :].astype(np.float32).copy()
        else:
            scores = self.scores(hist)
        scores[0, hist.matrix.indices] = -np.inf
        for i in exclude:
            if str(i) in self._item_index:
                scores[0, self._item_index[str(i)]] = -np.inf
        return self._answer(scores[0], k, fallback=fallback, unknown=unknown)

    def similar(self, item: str, k: int = 10) -> dict:
        """The `k` items most similar to `item` (it excluded)."""
        code = self._item_index.get(str(item))
        if code is None:
            from shipml.errors import DataError

            raise DataError(f"item {item!r} is not in the model's catalogue")
        total = sum(m.weight * standardize_rows(m.fitted.similar(np.array([code])))
                    for m in self.members)  # fmt: skip
        total[0, code] = -np.inf
        return self._answer(total[0], k)

    def _answer(self, row: np.ndarray, k: int, **extra) -> dict:
        finite = int(np.isfinite(row).sum())
        best = top_k(row[None, :], max(1, min(k, finite)))[0] if finite else np.array([], int)
        out = [{"item": str(self.items[i]), "score": float(row[i])} for i in best]
        return {"items": out, **extra}

    # -- storage -------------------------------------------------------------------------------
    def write(self, writer) -> None:
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
        writer.write("popular.npy", self.popular.astype(np.float32))
        from shipml.model import json_safe

        info = json_safe({k: v for k, v in self.info.items() if k not in ("name", "version")})
        writer.write_json("model.json", {"format": FORMAT, "kind": KIND, "members": members,
                                         "info": info})  # fmt: skip

    @classmethod
    def read(cls, reader, *, name: str | None = None, version: int | None = None) -> RecModel:
        from shipml.learners.registry import load_fitted

        spec = reader.read_json("model.json")
        ids = reader.read_json("ids.json")
        events = Interactions(
            np.array(ids["users"], dtype=object),
            np.array(ids["items"], dtype=object),
            reader.read_npy("events_user.npy").astype(np.int32),
            reader.read_npy("events_item.npy").astype(np.int32),
            reader.read_npy("events_weight.npy").astype(np.float32),
        )
        members = [RecMember(load_fitted(m, reader, KIND), float(m["weight"]), m.get("name", ""))
                   for m in spec["members"]]  # fmt: skip
        info = dict(spec.get("info", {}), name=name, version=version)
        return cls(members, events, reader.read_npy("popular.npy").astype(np.float32), info)
