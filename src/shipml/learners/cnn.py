"""The `cnn` learner family: a small convolutional network trained from scratch on the pixels
of an image column (learners/image_cnn.py), one network per validation fold, through the same
search, folds and ensemble as every other family.

It runs only when the features hold images as pixels (`TrainData.images`, set by the `scratch`
and `auto` image modes: learners/image.py): the network reshapes that block of the encoded
matrix back into (channels, size, size) images; the fold networks, their raw scores and
reasons are learners/fold_networks.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Budget, Candidate, Config, TrainData
from shipml.learners.fold_networks import FoldNetworks
from shipml.learners.fold_networks import fit_on_folds as fit_folds

__all__ = ["CNN", "CNNFamily", "CNNFitted"]

_SHARE = 0.6  # of the search time left when it starts: the CNN's (the study gets the rest)


def available() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError:
        return 'the cnn family needs PyTorch: pip install "shipml[images]"'
    return None


@dataclass
class CNNFitted(FoldNetworks):
    """The fold networks (learners/fold_networks.py), stored and read as the cnn's."""

    kind: str = "cnn"

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> FoldNetworks:
        from shipml.learners.image_cnn import cnn_from_artifacts

        return cls.read(meta, reader, task, cnn_from_artifacts)


def fit_on_folds(data: TrainData, plan, seed: int,
                 budget: Budget) -> tuple[np.ndarray, FoldNetworks, bool]:  # fmt: skip
    """One CNN per fold of `plan` (fold_networks.fit_on_folds)."""
    from shipml.learners.image_cnn import fit_cnn

    oof, fitted, trained = fit_folds(data, plan, seed, budget, "cnn", fit_cnn)
    return oof, CNNFitted(fitted.folds, fitted.images, fitted.task), trained


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
