"""The `finetune` learner family: the pretrained network's last block and head, fine-tuned on
the activation maps the features step stored (learners/image_tail.py), one network per
validation fold, through the same search, folds and ensemble as every other family.

It runs only when the features hold maps (`TrainData.images` of kind "maps", set by the
`finetune` image mode: learners/image.py), and only for classes. Its raw scores are
log-probabilities (log-odds for binary), as the cnn family's; it gives no per-feature reasons
(the whole score is the bias column of `contributions`): `shipml explain` draws an occlusion
heat map over the image instead (images/heatmap.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import Budget, Candidate, Config, TrainData
from shipml.learners.cnn import available, raw_scores

__all__ = ["FINETUNE", "FinetuneFamily", "FinetuneFitted", "maps_of"]

_SHARE = 0.9  # of the search time left when it starts (nothing else runs on maps)


def maps_of(X: np.ndarray, images: dict) -> np.ndarray:
    """The (n, channels, side, side) float32 maps inside the feature matrix."""
    c, s, start = int(images["channels"]), int(images["size"]), int(images["start"])
    block = np.asarray(X[:, start : start + c * s * s], dtype=np.float32)
    return np.ascontiguousarray(block.reshape(len(X), c, s, s))


@dataclass
class FinetuneFitted:
    """The fold networks, averaged in raw-score space."""

    folds: list  # FittedTail
    images: dict  # where the maps are in X
    task: str
    kind: str = "finetune"

    def raw(self, X: np.ndarray) -> np.ndarray:
        if not self.folds:
            raise RuntimeError("this fine-tuned network has no weights: the deadline came first")
        maps = maps_of(X, self.images)
        return np.mean([raw_scores(f.predict_proba(maps), self.task) for f in self.folds], axis=0)

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
    def load(cls, meta: dict, reader, task: str) -> FinetuneFitted:
        from shipml.learners.image_tail import tail_from_artifacts

        folds = [tail_from_artifacts(m, reader) for m in meta["folds"]]
        return cls(folds, dict(meta["images"]), task)


def fit_on_folds(data: TrainData, plan, seed: int,
                 budget: Budget) -> tuple[np.ndarray, FinetuneFitted, bool]:  # fmt: skip
    """One tail per fold of `plan`, early-stopped on the fold's validation rows, each in an
    equal share of the time left when it starts. (out-of-fold raw scores, the networks, every
    fold trained)."""
    from shipml.learners.image_tail import fit_tail

    maps = maps_of(data.X, data.images)
    n_classes = max(2, int(data.n_classes))
    y = data.y.astype(int)
    shape = (len(y), n_classes) if data.task == "multiclass" else len(y)
    oof, folds = np.zeros(shape), []
    for i, (train_rows, valid_rows) in enumerate(plan.folds):
        if budget.remaining <= 1.0:
            break
        share_end = budget.clock() + budget.remaining / (len(plan.folds) - i)
        fold = fit_tail(maps, y, np.asarray(train_rows), np.asarray(valid_rows),
                        layout=data.images, n_classes=n_classes, deadline=share_end,
                        clock=budget.clock, seed=seed * 1009 + i)  # fmt: skip
        oof[valid_rows] = raw_scores(fold.predict_proba(maps[valid_rows]), data.task)
        folds.append(fold)
    fitted = FinetuneFitted(folds, dict(data.images), data.task)
    return oof, fitted, len(folds) == len(plan.folds)


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
