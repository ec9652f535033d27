"""`shipml retrain`: a new version from the original training data plus the labelled feedback.

The newest part of the feedback (20 % by default) is kept out of training: both the current and
the new version are scored on it, so the side-by-side comparison is on recent, real traffic that
neither model saw. Nothing is promoted: the user reads the comparison and decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shipml.errors import DataError, ShipmlError

__all__ = ["retrain", "Retrained"]

_MIN_COMPARE_ROWS = 10


@dataclass
class Retrained:
    name: str
    current: int  # the version the new one is compared with
    new: int
    rows_original: int
    rows_feedback_train: int
    rows_feedback_compare: int
    rows_from_feedback: int = 0  # a recommender: new events from click/purchase feedback
    offline: dict[str, dict] = field(default_factory=dict)  # version -> validation metrics
    recent: dict[str, dict] = field(default_factory=dict)  # version -> metrics on recent rows
    notes: list[str] = field(default_factory=list)
    compare_ids: list[str] = field(default_factory=list)  # prediction ids of the compared rows
    model: object = None

    def as_dict(self) -> dict:
        from shipml.model import json_safe

        out = {k: v for k, v in self.__dict__.items() if k not in ("model", "compare_ids")}
        return json_safe(out)


def retrain(
    ref: str,
    *,
    data=None,
    registry=None,
    registry_uri: str | None = None,
    time_budget: float | None = None,
    compare_share: float = 0.2,
    progress=None,
) -> Retrained:
    """Train a new version of `ref`'s model ("churn" means churn@production when that alias
    exists, else the latest version) on its training data + feedback; compare both. A
    recommender retrains on its stored events + the new events of `data` and of the click and
    purchase feedback on its served answers (recommend/retrain.py)."""
    import shipml
    from shipml.data.io import read_table
    from shipml.registry.store import Registry

    reg = registry or Registry(registry_uri)
    info = _resolve(reg, ref)
    current = shipml.load(f"{info.name}/{info.version}", registry=reg)
    if current.task == "answer":  # confirmed questions become paraphrases
        from shipml.answer_retrain import retrain_answerer

        return retrain_answerer(current, info, reg, data=data, compare_share=compare_share,
                                progress=progress)  # fmt: skip
    if current.task == "recommend":  # `data`: the new events, added to the stored ones
        from shipml.recommend.retrain import retrain_recommender

        return retrain_recommender(current, info, reg, data=data, time_budget=time_budget,
                                   compare_share=compare_share, progress=progress)  # fmt: skip
    schema, lineage = current.schema, current.info.get("lineage", {})
    notes: list[str] = []

    original = _original_table(data, lineage, notes, read_table)
    labelled = _labelled(reg, info.name)
    feedback = _feedback_frame(labelled, schema, notes)
    train_rows, recent = _split_feedback(feedback, compare_share, notes)
    combined = pd.concat([original, train_rows], ignore_index=True, sort=False)
    new = _train_again(combined, current, info.name, reg, time_budget, progress)
    result = Retrained(
        name=info.name,
        current=info.version,
        new=new.version,
        rows_original=len(original),
        rows_feedback_train=len(train_rows),
        rows_feedback_compare=len(recent),
        notes=notes,
        compare_ids=list(labelled["id"].iloc[len(labelled) - len(recent) :]) if len(recent) else [],
        model=new,
    )
    result.offline = {str(info.version): current.metrics, str(new.version): new.metrics}
    if len(recent):
        for label, model in ((str(info.version), current), (str(new.version), new)):
            result.recent[label] = model.evaluate(recent)
    return result


def _resolve(reg, ref: str):
    """The version `ref` names; a bare name is its production alias when there is one, else
    its latest version."""
    from shipml.registry.store import parse_ref

    name, version, alias = parse_ref(ref)
    if version is None and alias is None:
        try:
            return reg.resolve(f"{name}@production")
        except ShipmlError:
            return reg.resolve(name)
    return reg.resolve(ref)


def _labelled(reg, name: str) -> pd.DataFrame:
    """The logged predictions of model `name` that got a feedback label (DataError: none)."""
    from shipml.monitor.log import read_log

    labelled = read_log(reg.engine, name)
    labelled = labelled[labelled["feedback"].notna()] if len(labelled) else labelled
    if len(labelled) == 0:
        raise DataError(
            f"no feedback labels for '{name}' yet: send true labels to POST /v1/feedback "
            "with the prediction ids the server returned, then retrain"
        )
    return labelled


def _split_feedback(feedback: pd.DataFrame, compare_share: float, notes: list[str]):
    """(rows to train on, the newest `compare_share` kept out to compare the two versions on);
    too few to compare: all are trained on."""
    if not 0 <= compare_share < 1:
        raise DataError(f"compare_share must be in [0, 1), got {compare_share}")
    n_compare = int(round(len(feedback) * compare_share))
    if n_compare < _MIN_COMPARE_ROWS:
        n_compare = 0
        notes.append(
            f"only {len(feedback)} feedback rows: all are used for training, and the comparison "
            "is on validation scores only"
        )
    recent = feedback.iloc[len(feedback) - n_compare :] if n_compare else feedback.iloc[:0]
    train_rows = feedback.iloc[: len(feedback) - n_compare]
    return train_rows, recent


def _train_again(combined: pd.DataFrame, current, name: str, reg, time_budget, progress):
    """A new version of `name` on `combined`, with the settings `current` was trained with."""
    import shipml

    schema, lineage = current.schema, current.info.get("lineage", {})
    return shipml.train(
        combined,
        schema.target,
        name=name,
        registry=reg,
        time_budget=time_budget or lineage.get("time_budget_s") or 60.0,
        task=schema.task,
        metric=lineage.get("metric"),
        time_column=schema.time_column,
        group_column=schema.group_column,
        drop=[c.name for c in schema.columns if c.note.startswith("dropped on request")],
        kinds={c.name: c.kind for c in schema.columns if c.note.startswith("kind set by user")},
        pii=[c.name for c in schema.columns if "marked by user" in c.note],
        keep_pii=[c.name for c in schema.columns if c.pii and c.used],
        seed=int(lineage.get("seed", 0)),
        n_trials=lineage.get("n_trials"),
        progress=progress,
    )


def _original_table(data, lineage: dict, notes: list[str], read_table) -> pd.DataFrame:
    """The training table: `data` if given, else the file the version was trained on."""
    if data is not None:
        return read_table(data).frame
    source = lineage.get("data_source")
    from pathlib import Path

    if not source or source.startswith("<") or not Path(source).is_file():
        raise DataError(
            f"the original training data ({source or 'unknown'}) is not available here: give it "
            "with --data (the table the model was trained on)"
        )
    table = read_table(source)
    if lineage.get("data_sha256") and table.sha256 != lineage["data_sha256"]:
        notes.append(f"{source} changed since training (its sha256 differs); using it as it is now")
    return table.frame


def _feedback_frame(labelled: pd.DataFrame, schema, notes: list[str]) -> pd.DataFrame:
    """Logged inputs + the feedback label as the target, oldest first. Hashed PII values cannot
    be learned from: they become missing."""
    columns = [c.name for c in schema.features]
    frame = pd.DataFrame({c: labelled.get(c) for c in columns}, index=labelled.index)
    hashed = [
        c
        for c in columns
        if frame[c].map(lambda v: isinstance(v, str) and v.startswith("hmac:")).any()
    ]
    for column in hashed:
        frame[column] = None
    if hashed:
        notes.append(
            f"personal-data columns {', '.join(hashed)} are stored hashed, so they are missing "
            "in the feedback rows"
        )
    frame = frame.astype(object).where(frame.notna(), None)
    frame = frame.map(lambda v: None if v is None else str(v))
    # a log where some rows have no label holds the labels as floats: 2.0 is the class "2"
    frame[schema.target] = [
        str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        for v in labelled["feedback"]
    ]
    frame.index = np.arange(len(frame))
    return frame
