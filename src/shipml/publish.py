"""Publishing a trained model: its files, the drift reference `shipml monitor` compares live
traffic with, the training report, and the registry row that makes the version visible.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["publish", "oof_predictions"]

log = logging.getLogger(__name__)


def publish(model, name, *, registry, registry_uri, frame, tdata, rows, oof_raw, report, timing):
    """Store `model` as the next version of `name`: its files, the drift reference, the
    training report, then the registry row (nothing is visible before every file is written).
    Each step runs on the time plan (its reservation released, its duration recorded)."""
    from shipml.registry.store import Registry

    reg = registry or Registry(registry_uri)
    writer = reg.writer()
    try:
        model.info["lineage"]["duration_s"] = round(timing.elapsed(), 2)
        timing.run("write", lambda: model.write(writer))
        timing.run("reference", lambda: _write_drift_reference(writer, model, frame, oof_raw))
        if report:
            path = writer.dir / "report.html"
            timing.run(
                "report",
                lambda: _training_report(model, name, path, frame, tdata, rows, oof_raw),
            )
            writer.files.append("report.html")
        timing.run("finish", writer.finish)
        info = reg.register(
            name,
            writer,
            task=model.task,
            metrics=model.metrics,
            lineage=model.info["lineage"],
            schema=model.schema.to_dict(),
        )
    except BaseException:
        writer.abort()
        raise
    model.info.update(name=info.name, version=info.version)
    if report:
        model.info["report_path"] = str(info.artifact_dir / "report.html")
    log.info("registered %s (%.1fs; after the search: %s)", info.ref,
             timing.elapsed(), timing.spent)  # fmt: skip
    return model


def oof_predictions(model, oof_raw) -> tuple[np.ndarray, np.ndarray | None]:
    """What the model answered for its validation rows: (labels or values, proba or None)."""
    from shipml.tasks import task_kind

    return task_kind(model.task).outputs(model, oof_raw)


def _write_drift_reference(writer, model, frame, oof_raw) -> None:
    """The training reference `shipml monitor` compares live inputs and predictions with:
    a sample of the training rows (PII columns left out) and the out-of-fold predictions."""
    from shipml.monitor.reference import ARTIFACT, build_reference, prediction_reference

    seed = model.info["lineage"]["seed"]
    reference = build_reference(model.schema.coerce(frame, strict=False), model.schema, seed=seed)
    predictions, _ = oof_predictions(model, oof_raw)
    reference["prediction"] = prediction_reference(list(predictions), model.task, seed=seed)
    reference["task"] = model.task
    writer.write_json(ARTIFACT, reference)


def _training_report(model, name, path: Path, frame, tdata, rows, oof_raw) -> None:
    from shipml.evaluate.report import write_report
    from shipml.evaluate.summary import data_summary

    y_pred, proba = oof_predictions(model, oof_raw)
    if model.task == "regression":
        y_true = tdata.y[rows]
    else:
        y_true = np.asarray(model.classes, dtype=object)[tdata.y[rows]]
    info = model.describe()
    info.update(name=name)
    # the validated rows' texts, for the report's examples of errors
    text = [c.name for c in model.schema.features if c.kind == "text" and not c.pii]
    examples = frame.iloc[rows][text] if text and model.task != "regression" else None
    write_report(
        path,
        title=f"{name} — training report",
        task=model.task,
        metrics=model.metrics,
        y_true=y_true,
        y_pred=y_pred,
        proba=proba,
        classes=model.classes,
        importance=model.info.get("importance"),
        trials=model.info.get("trials"),
        data_summary=data_summary(frame, model.schema),
        validation=model.info.get("validation", ""),
        model_info=info,
        notes=model.info.get("notes"),
        examples=examples,
        threshold=model.threshold,
        images=model._report_images(frame.iloc[rows]),
    )
