"""Which runtime a text model predicts with: its PyTorch encoder, or an int8 ONNX copy of it.

After training, the encoder is exported to ONNX and quantized (encoders/onnx.py); the model
scores its validation rows with both, and keeps int8 when accuracy drops by at most 0.5 points
(R² by at most 0.005 for regression). Both runtimes' throughput is measured on the same texts
with the embedding cache off. Any failure keeps PyTorch and says why: the model is never lost
to an optimization.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from shipml.learners.base import Budget

__all__ = ["pick_runtime", "MAX_DROP", "MAX_ROWS"]

log = logging.getLogger(__name__)
MAX_DROP = 0.005
MAX_ROWS = 1000  # validation rows scored with both runtimes
_MIN_ROWS = 200  # fewer rows than this (the budget being short) judge nothing: keep PyTorch
_SPEED_TEXTS = 256


def pick_runtime(model, frame: pd.DataFrame, y_true: np.ndarray, *, max_drop: float = MAX_DROP,
                 seed: int = 0, budget: Budget | None = None) -> dict | None:  # fmt: skip
    """Attach the int8 ONNX encoder to `model` if it keeps the validation score; return what was
    measured (JSON-able), or None for models without a sentence encoder. With a `budget`, the
    rows scored after the export are as many as fit before its deadline (at the encoder's
    measured speed), and too few for a judgement keep PyTorch."""
    from shipml.encoders.onnx import export_onnx, quantize_int8

    torch_encoder = model.encoder.text_encoder
    if torch_encoder is None:
        return None
    started = time.monotonic()
    try:
        quantized = torch_encoder.with_onnx(quantize_int8(export_onnx(torch_encoder)))
        n = _rows_that_fit(model, frame, budget)
        if n < min(_MIN_ROWS, len(frame)):
            note = ("runtime: PyTorch (the int8 ONNX check ran out of time budget after the "
                    "export: too few validation rows could be scored to judge it)")  # fmt: skip
            return {"runtime": "pytorch", "note": note}
        if len(frame) > n:
            keep = np.sort(np.random.default_rng(seed).choice(len(frame), n, replace=False))
            frame, y_true = frame.iloc[keep], np.asarray(y_true, dtype=object)[keep]
        base, before = _score(model, frame, y_true)
        model.encoder.text_encoder = quantized
        fast, after = _score(model, frame, y_true)
    except Exception as exc:  # noqa: BLE001 - any export/runtime failure: keep PyTorch
        model.encoder.text_encoder = torch_encoder
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        log.warning("ONNX int8 runtime not used: %s", reason)
        note = f"runtime: PyTorch (ONNX int8 export failed: {reason})"
        return {"runtime": "pytorch", "note": note}
    texts = _texts(model, frame)
    speed_torch, speed_fast = _throughput(torch_encoder, texts), _throughput(quantized, texts)
    kept = base - fast <= max_drop
    if not kept:
        model.encoder.text_encoder = torch_encoder
    what = "accuracy" if model.task != "regression" else "R²"
    note = (
        f"runtime: {'ONNX int8' if kept else 'PyTorch'} — validation {what} {fast:.4f} with "
        f"the int8 ONNX encoder vs {base:.4f} with PyTorch on {len(frame):,} rows "
        f"({'within' if kept else 'beyond'} the {max_drop:.3f} allowed; the same answer for "
        f"{_agreement(model.task, before, after):.1%} of them); "
        f"{speed_fast:,.0f} vs {speed_torch:,.0f} texts/s"
    )
    log.info(note)
    return {
        "runtime": "onnx-int8" if kept else "pytorch",
        "metric": what,
        "score_pytorch": round(base, 5),
        "score_onnx_int8": round(fast, 5),
        "texts_per_s_pytorch": round(speed_torch, 1),
        "texts_per_s_onnx_int8": round(speed_fast, 1),
        "speedup": round(speed_fast / speed_torch, 2) if speed_torch else None,
        "rows": len(frame),
        "same_predictions": round(_agreement(model.task, before, after), 5),
        "seconds": round(time.monotonic() - started, 1),
        "note": note,
    }


def _rows_that_fit(model, frame: pd.DataFrame, budget: Budget | None) -> int:
    """Validation rows the int8 encoder can score (plus the speed measurement) in time."""
    if budget is None or model.encoder.text_encoder.seconds_per_char is None:
        return min(MAX_ROWS, len(frame))
    from shipml.encoders.loading import DEFAULT_MAX_LENGTH
    from shipml.encoders.sentence import char_cap

    columns = [c.name for c in model.schema.features if c.kind == "text"]
    cap = char_cap(DEFAULT_MAX_LENGTH)  # as the packaged encoder reads them (the same as before)
    chars = sum(frame[c].astype("string").str.len().fillna(0).clip(upper=cap).sum()
                for c in columns)  # fmt: skip
    per_row = model.encoder.text_encoder.seconds_per_char * float(chars) / max(len(frame), 1)
    left = budget.remaining - 2 * (_SPEED_TEXTS + 8) * per_row
    return int(min(MAX_ROWS, len(frame), max(0.0, left) / max(per_row, 1e-9)))


def _score(model, frame: pd.DataFrame, y_true: np.ndarray) -> tuple[float, np.ndarray]:
    """(accuracy or R², the predictions)."""
    predicted = np.asarray(model.predict(frame))
    if model.task == "regression":
        from sklearn.metrics import r2_score

        return float(r2_score(np.asarray(y_true, dtype=float), predicted.astype(float))), predicted
    same = predicted.astype(object) == np.asarray(y_true, dtype=object)
    return float(np.mean(same)), predicted


def _agreement(task: str, a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows where both runtimes answer the same (regression: within 1% of the range)."""
    if task == "regression":
        a, b = a.astype(float), b.astype(float)
        tolerance = 0.01 * (np.ptp(a) or 1.0)
        return float(np.mean(np.abs(a - b) <= tolerance))
    return float(np.mean(a.astype(object) == b.astype(object)))


def _texts(model, frame: pd.DataFrame) -> list:
    columns = [c.name for c in model.schema.features if c.kind == "text"]
    return frame[columns[0]].head(_SPEED_TEXTS).tolist() if columns else []


def _throughput(encoder, texts: list) -> float:
    """Texts per second of one batch call, cache off, after a warm-up."""
    if not texts:
        return 0.0
    cached, encoder.use_cache = encoder.use_cache, False
    try:
        encoder.encode(texts[:8])
        t0 = time.perf_counter()
        encoder.encode(texts)
        return len(texts) / max(time.perf_counter() - t0, 1e-9)
    finally:
        encoder.use_cache = cached
