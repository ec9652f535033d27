"""Item-kNN: "customers who bought this also bought". Each item keeps its `neighbours` most
similar items by shrunk cosine similarity of their columns in the user x item confidence matrix
(Sarwar et al. 2001; shrinkage: Koren 2008); a user's score for an item is the sum of the
similarities of that item to the items in the user's history (`history @ S`), the history
recency-weighted (learners/recency.py, tau chosen on the validation users; None: no decay).

The similarity is stored as a sparse matrix (three .npy arrays), scored with SciPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shipml.learners.base import Budget, Candidate, Config, RankFolds
from shipml.learners.recency import decayed_candidate, recency_weighted, tau_of

__all__ = ["ItemKNNFitted", "ITEMKNN", "item_similarity", "write_csr", "read_csr"]

_BLOCK_CELLS = 1 << 22  # dense similarity cells computed at a time (16 MB of float32)


def item_similarity(X: sp.csr_matrix, neighbours: int, shrink: float,
                    exponent: float = 1.0) -> sp.csr_matrix:  # fmt: skip
    """(n_items, n_items) float32 CSR S: S[i, j] = cos(i, j) ** exponent with the cosine's
    denominator shrunk (|x_i| |x_j| + shrink), kept for the `neighbours` items i most similar
    to each item j (column j: the neighbours of j); the diagonal is zero."""
    n = X.shape[1]
    Xc = sp.csc_matrix(X, dtype=np.float32)
    XT = Xc.T.tocsr()
    norms = np.sqrt(np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel()).astype(np.float32)
    k = max(1, min(int(neighbours), n - 1))
    step = max(1, _BLOCK_CELLS // max(n, 1))
    rows, cols, vals = [], [], []
    for start in range(0, n, step):
        cols_j = np.arange(start, min(n, start + step))
        block = (XT @ Xc[:, start : start + len(cols_j)]).toarray()  # (n, b) co-occurrence
        block /= norms[:, None] * norms[None, cols_j] + shrink + 1e-12
        block[cols_j, np.arange(len(cols_j))] = 0.0
        top = np.argpartition(-block, k - 1, axis=0)[:k]  # (k, b): each column's neighbours
        v = np.take_along_axis(block, top, axis=0)
        keep = v > 0
        rows.append(top[keep])
        cols.append(np.broadcast_to(cols_j, top.shape)[keep])
        vals.append(v[keep] ** exponent if exponent != 1.0 else v[keep])
    S = sp.csr_matrix((np.concatenate(vals).astype(np.float32),
                       (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))  # fmt: skip
    S.sort_indices()
    return S


def write_csr(prefix: str, m: sp.csr_matrix) -> tuple[dict, dict]:
    """A CSR matrix as three .npy files: (meta, files)."""
    names = {part: f"{prefix}_{part}.npy" for part in ("data", "indices", "indptr")}
    files = {names["data"]: m.data.astype(np.float32), names["indices"]: m.indices.astype(np.int32),
             names["indptr"]: m.indptr.astype(np.int64)}  # fmt: skip
    return {"shape": list(m.shape), **names}, files


def read_csr(meta: dict, reader) -> sp.csr_matrix:
    """The CSR matrix `write_csr` stored."""
    parts = [reader.read_npy(meta[p]) for p in ("data", "indices", "indptr")]
    return sp.csr_matrix((parts[0].astype(np.float32), parts[1], parts[2]),
                         shape=tuple(meta["shape"]))  # fmt: skip


@dataclass
class ItemKNNFitted:
    similarity: sp.csr_matrix  # (n_items, n_items) float32: S[i, j], neighbour i of item j
    tau: float | None = None  # the query's recency decay in events (None: none)
    kind: str = "itemknn"
    _by_column: sp.csr_matrix | None = field(default=None, init=False, repr=False, compare=False)

    def scores(self, histories) -> np.ndarray:
        return self.scores_of(recency_weighted(histories, self.tau))

    def scores_of(self, query: sp.csr_matrix) -> np.ndarray:
        return np.asarray((query @ self.similarity).toarray(), dtype=np.float32)

    def similar(self, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        rows = self.similarity[items].toarray()
        if self._by_column is None:  # S^T as CSR, once: a column of S is then a row
            self._by_column = self.similarity.T.tocsr()
        cols = self._by_column[items].toarray()
        out = np.maximum(rows, cols)  # i's own neighbours and the items that have i as one
        out[np.arange(len(items)), items] = max(1.0, float(out.max(initial=0.0)))
        return out.astype(np.float32)

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        meta, files = write_csr(f"{prefix}_itemknn", self.similarity)
        return {"kind": self.kind, "similarity": meta, "tau": self.tau}, files

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> ItemKNNFitted:
        return cls(read_csr(meta["similarity"], reader), tau_of(meta.get("tau")))


def _fitted(data, params: dict) -> ItemKNNFitted:
    S = item_similarity(data.matrix(), params["neighbours"], params["shrink"],
                        params.get("exponent", 1.0))  # fmt: skip
    return ItemKNNFitted(S, tau_of(params.get("tau")))


@dataclass(frozen=True)
class ItemKNNFamily:
    name: str = "itemknn"
    kind: str = "itemknn"
    keep: int = 2
    floor: bool = False
    baseline: bool = False
    searched: bool = True
    refits: bool = True
    stops_at_deadline: bool = False  # one sparse product: seconds on a shop's catalogue

    def available(self) -> str | None:
        return None

    def configs(self, data) -> list[Config]:
        return [
            Config("itemknn(k=100)", {"neighbours": 100, "shrink": 10.0, "exponent": 1.0}),
            Config("itemknn(k=500)", {"neighbours": 500, "shrink": 0.0, "exponent": 2.0}),
        ]

    def suggest(self, trial, task, transforms) -> dict:
        return {"neighbours": trial.suggest_int("neighbours", 5, 1000, log=True),
                "shrink": trial.suggest_float("shrink", 0.0, 200.0),
                "exponent": trial.suggest_float("exponent", 0.5, 3.0)}  # fmt: skip

    def fit(self, folds: RankFolds, config: Config, budget: Budget, trial=None) -> Candidate:
        """S for the configuration, then the query's decay chosen on validation."""
        params = _params(config.params)
        fitted = _fitted(folds.data, params)
        return decayed_candidate(folds, self.name, params, fitted)

    def refit(self, cand: Candidate, data, seed: int, budget: Budget) -> Candidate:
        cand.fitted = _fitted(data, cand.params)
        return cand

    def load(self, meta: dict, reader, task: str) -> ItemKNNFitted:
        return ItemKNNFitted.load(meta, reader, task)


def _params(params: dict) -> dict:
    return {"neighbours": int(params["neighbours"]), "shrink": float(params["shrink"]),
            "exponent": float(params.get("exponent", 1.0))}  # fmt: skip


ITEMKNN = ItemKNNFamily()
