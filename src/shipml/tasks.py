"""Task kinds: what a model answers, how it is scored, and how its raw scores become answers.

Today there is one kind, `supervised` (one row of features -> a label or a number: the
`binary`, `multiclass` and `regression` tasks of the schema). The next kinds plug in here
(docs/architecture.md): `recommend` (user-item logs -> ranked items, scored by recall@k /
NDCG@k), `retrieve` (questions -> FAQ answers or "no answer", scored by accuracy and coverage at
a rejection threshold), and images reuse `supervised` with an image input kind.

A task kind owns: its tasks, its default metric, the answers for raw scores (`outputs`), the
validation metrics of out-of-fold scores, and the decision it tunes after the search (a binary
threshold). `train`, `publish` and `Model` ask the kind rather than branching on the task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipml.learners.base import to_proba, untransform_target

__all__ = ["Supervised", "SUPERVISED", "KINDS", "task_kind"]


@dataclass(frozen=True)
class Supervised:
    """Labels (binary, multiclass) or numbers (regression) for rows of features."""

    name: str = "supervised"
    tasks: tuple[str, ...] = ("binary", "multiclass", "regression")

    def default_metric(self, task: str) -> str:
        from shipml.scoring import default_metric

        return default_metric(task)

    def outputs(self, model, raw: np.ndarray, threshold: float | None = None,
                min_confidence: float | None = None):  # fmt: skip
        """(labels or values, class probabilities or None) for raw ensemble scores; labels
        below the out-of-scope confidence are its label (scope.py)."""
        if model.task == "regression":
            return untransform_target(raw, model.transform), None
        proba = to_proba(raw, model.task)
        return model.labels_from_proba(proba, threshold, min_confidence=min_confidence), proba

    def validation_metrics(self, model, y_enc: np.ndarray, oof_raw: np.ndarray) -> dict:
        """The metrics of out-of-fold raw scores against the encoded targets."""
        from shipml.evaluate.metrics import regression_metrics

        if model.task == "regression":
            return regression_metrics(y_enc, untransform_target(oof_raw, model.transform))
        from shipml.model import scoped_metrics

        labels = np.asarray(model.classes, dtype=object)
        proba = to_proba(oof_raw, model.task)
        return scoped_metrics(model, labels[y_enc], proba, model.labels_from_proba(proba))

    def decide_scope(self, model, y_enc: np.ndarray, oof_raw: np.ndarray, label,
                     max_in_scope_loss: float) -> dict:  # fmt: skip
        """The out-of-scope threshold on out-of-fold predictions (scope.py)."""
        from shipml.scope import choose_scope

        labels = np.asarray(model.classes, dtype=object)
        proba = to_proba(oof_raw, model.task)
        return choose_scope(labels[y_enc], proba, model.classes, label, max_in_scope_loss)

    def decide(self, task: str, y_scored: np.ndarray, oof_raw: np.ndarray, metric: str,
               seed: int):  # fmt: skip
        """The binary decision threshold chosen for `metric` on out-of-fold predictions (the
        metric's best threshold for a label metric, 0.5 for a ranking one:
        evaluate/threshold.py); None for the other tasks."""
        if task != "binary":
            return None
        from shipml.evaluate.threshold import choose_threshold

        p = to_proba(oof_raw, "binary")[:, 1]
        return choose_threshold(y_scored, p, metric, seed=seed)


SUPERVISED = Supervised()
KINDS = {SUPERVISED.name: SUPERVISED}


def task_kind(task: str):
    """The kind that owns `task` (a schema's task name)."""
    for kind in KINDS.values():
        if task in kind.tasks:
            return kind
    raise KeyError(task)
