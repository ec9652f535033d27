"""The `cnn` learner family: a small convolutional network trained from scratch on the pixels
of an image column (learners/image_cnn.py), one network per validation fold, through the same
search, folds and ensemble as every other family.

It runs only when the features hold images as pixels (`TrainData.images`, set by the `scratch`
and `auto` image modes: learners/image.py): the network reshapes that block of the encoded
matrix back into (channels, size, size) images. Its raw scores are log-probabilities (per class;
log-odds for binary), so that it averages with the other families' raw scores. It gives no
per-feature reasons: the whole score is in the bias column of `contributions`, and `shipml
explain` draws an occlusion heat map over the image instead (images/heatmap.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Budget, Candidate, Config, TrainData

__all__ = ["CNN", "CNNFamily", "CNNFitted"]

_SHARE = 0.6  # of the search time left when it starts: the CNN's (the study gets the rest)
_EPS = 1e-7


def available() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError:
        return 'the cnn family needs PyTorch: pip install "shipml[images]"'
    return None


def pixels_of(X: np.ndarray, images: dict) -> np.ndarray:
    """The (n, channels, size, size) float32 images inside the feature matrix."""
    c, s = int(images["channels"]), int(images["size"])
    start = int(images["start"])
    block = np.asarray(X[:, start : start + c * s * s], dtype=np.float32)
    return np.ascontiguousarray(block.reshape(len(X), c, s, s))


def raw_scores(proba: np.ndarray, task: str) -> np.ndarray:
    """Probabilities as raw scores: log-odds (binary) or log-probabilities (multiclass)."""
    logp = np.log(np.clip(proba, _EPS, 1.0))
    if task == "binary":
        return logp[:, 1] - logp[:, 0]
    return logp


@dataclass
class CNNFitted:
    """The fold networks, averaged in raw-score space (as the MLP's and LightGBM's folds)."""

    folds: list  # FittedCNN
    images: dict  # where the pixels are in X
    task: str
    kind: str = "cnn"

    def raw(self, X: np.ndarray) -> np.ndarray:
        if not self.folds:
            raise RuntimeError("this CNN has no trained network: the deadline came first")
        pixels = pixels_of(X, self.images)
        return np.mean([raw_scores(f.predict_proba(pixels), self.task) for f in self.folds],
                       axis=0)  # fmt: skip

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, p + 1), or (n, k, p + 1): no per-feature share, the whole score as the bias."""
        raw = self.raw(X).reshape(len(X), -1)
        out = np.zeros((len(X), raw.shape[1], X.shape[1] + 1))
        out[:, :, -1] = raw
        return out if self.task == "multiclass" else out[:, 0, :]

    def artifacts(self, prefix: str) -> tuple[dict, dict]:
        from shipml.registry.artifacts import artifacts_of_parts

        metas, files = artifacts_of_parts(self.folds, prefix)
        return {"kind": self.kind, "images": self.images, "folds": metas}, files

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> CNNFitted:
        from shipml.learners.image_cnn import cnn_from_artifacts

        folds = [cnn_from_artifacts(m, reader) for m in meta["folds"]]
        return cls(folds, dict(meta["images"]), task)


def fit_on_folds(data: TrainData, plan, seed: int,
                 budget: Budget) -> tuple[np.ndarray, CNNFitted, bool]:  # fmt: skip
    """One network per fold of `plan`, early-stopped on the fold's validation rows, each in an
    equal share of the time left when it starts. (out-of-fold raw scores, 0 where no fold
    validates; the networks; every fold trained)."""
    from shipml.learners.image_cnn import fit_cnn

    pixels = pixels_of(data.X, data.images)
    n_classes = max(2, int(data.n_classes))
    y = data.y.astype(int)
    shape = (len(y), n_classes) if data.task == "multiclass" else len(y)
    oof, folds = np.zeros(shape), []
    for i, (train_rows, valid_rows) in enumerate(plan.folds):
        if budget.remaining <= 1.0:
            break
        share_end = budget.clock() + budget.remaining / (len(plan.folds) - i)
        fold = fit_cnn(pixels, y, np.asarray(train_rows), np.asarray(valid_rows),
                       n_classes=n_classes, deadline=share_end, clock=budget.clock,
                       seed=seed * 1009 + i)  # fmt: skip
        oof[valid_rows] = raw_scores(fold.predict_proba(pixels[valid_rows]), data.task)
        folds.append(fold)
    fitted = CNNFitted(folds, dict(data.images), data.task)
    return oof, fitted, len(folds) == len(plan.folds)


@dataclass(frozen=True)
class CNNFamily:
    """The search's view of the CNN (learners/base.py's Family): one fixed configuration, run
    only on features that hold pixels, fold networks (no refit), inside its share of the time."""

    name: str = "cnn"
    kind: str = "cnn"
    keep: int = 2
    floor: bool = False
    baseline: bool = False
    searched: bool = False
    refits: bool = False
    stops_at_deadline: bool = True

    def available(self) -> str | None:
        return available()

    def configs(self, data: TrainData) -> list[Config]:
        images = data.images or {}
        if images.get("kind", "pixels") != "pixels" or not images or data.task == "regression":
            return []
        return [Config("cnn (from scratch)", {})]

    def suggest(self, trial, task: str, transforms: list[str]) -> dict | None:
        return None

    def fit(self, folds, config: Config, budget: Budget, trial=None) -> Candidate:
        share = Budget(budget.clock() + _SHARE * max(0.0, budget.remaining), budget.clock)
        oof, fitted, trained = fit_on_folds(folds.data, folds.plan, folds.seed, share)
        return folds.candidate(self.name, config.params, oof, fitted, complete=trained,
                               scored=trained)  # fmt: skip

    def refit(self, cand: Candidate, data: TrainData, seed: int, budget: Budget) -> Candidate:
        return cand

    def load(self, meta: dict, reader, task: str) -> CNNFitted:
        return CNNFitted.load(meta, reader, task)


CNN = CNNFamily()
