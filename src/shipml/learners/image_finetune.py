"""The `finetune` learner family: the pretrained network's last block and head, fine-tuned on
the activation maps the features step stored (learners/image_tail.py), one network per
validation fold, through the same search, folds and ensemble as every other family.

It runs only when the features hold maps (`TrainData.images` of kind "maps", set by the
`finetune` image mode: learners/image.py), and only for classes; the fold networks, their raw
scores and reasons are learners/fold_networks.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Budget, Candidate, Config, TrainData
from shipml.learners.cnn import available
from shipml.learners.fold_networks import FoldNetworks
from shipml.learners.fold_networks import fit_on_folds as fit_folds

__all__ = ["FINETUNE", "FinetuneFamily", "FinetuneFitted"]

_SHARE = 0.9  # of the search time left when it starts (nothing else runs on maps)


@dataclass
class FinetuneFitted(FoldNetworks):
    """The fold networks (learners/fold_networks.py), stored and read as the tails."""

    kind: str = "finetune"

    @classmethod
    def load(cls, meta: dict, reader, task: str) -> FoldNetworks:
        from shipml.learners.image_tail import tail_from_artifacts

        return cls.read(meta, reader, task, tail_from_artifacts)


def fit_on_folds(data: TrainData, plan, seed: int,
                 budget: Budget) -> tuple[np.ndarray, FoldNetworks, bool]:  # fmt: skip
    """One tail per fold of `plan` (fold_networks.fit_on_folds)."""
    from functools import partial

    from shipml.learners.image_tail import fit_tail

    fit = partial(fit_tail, layout=data.images)
    oof, fitted, trained = fit_folds(data, plan, seed, budget, "finetune", fit)
    return oof, FinetuneFitted(fitted.folds, fitted.images, fitted.task), trained


@dataclass(frozen=True)
class FinetuneFamily:
    """The search's view of fine-tuning (learners/base.py's Family): one fixed configuration,
    run only on features that hold maps, fold networks (no refit), inside its share of the
    time."""

    name: str = "finetune"
    kind: str = "finetune"
    keep: int = 1
    floor: bool = False
    baseline: bool = False
    searched: bool = False
    refits: bool = False
    stops_at_deadline: bool = True

    def available(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
            return 'the finetune family needs the pretrained network: pip install "shipml[images]"'
        return available()

    def configs(self, data: TrainData) -> list[Config]:
        images = data.images or {}
        if images.get("kind") != "maps" or data.task == "regression":
            return []
        return [Config("finetune (last block + head)", {})]

    def suggest(self, trial, task: str, transforms: list[str]) -> dict | None:
        return None

    def fit(self, folds, config: Config, budget: Budget, trial=None) -> Candidate:
        share = Budget(budget.clock() + _SHARE * max(0.0, budget.remaining), budget.clock)
        oof, fitted, trained = fit_on_folds(folds.data, folds.plan, folds.seed, share)
        return folds.candidate(self.name, config.params, oof, fitted, complete=trained,
                               scored=trained)  # fmt: skip

    def refit(self, cand: Candidate, data: TrainData, seed: int, budget: Budget) -> Candidate:
        return cand

    def load(self, meta: dict, reader, task: str) -> FinetuneFitted:
        return FinetuneFitted.load(meta, reader, task)


FINETUNE = FinetuneFamily()
