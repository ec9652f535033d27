"""Which runtime an image model's pretrained network encodes with: ONNX fp32, or int8.

Before the training images are embedded, the network is exported to ONNX (the same function as
PyTorch: cosine 1.000, 2-4x faster on a CPU; encoders/image_onnx.py) and quantized to int8 with
a few training images as calibration (4-9x faster than PyTorch). A check then embeds a
stratified sample of the training images with both graphs and scores a nearest-centroid
classifier on each by cross-validation: int8 is kept when its accuracy is at most
`MAX_DROP` (0.5 points) below fp32's and its vectors agree (mean cosine >= `MIN_COSINE`). The
training rows, the validation rows and every later prediction then use the graph kept, so the
heads learn from the vectors the served model computes. The model stores that graph (and the
weights, for re-export). A failure to export or quantize keeps PyTorch and says why: the model is
never lost to an optimization.
"""

from __future__ import annotations

import logging
import time

import numpy as np

__all__ = ["MAX_DROP", "MIN_COSINE", "CHECK_IMAGES", "fast_network"]

log = logging.getLogger(__name__)
MAX_DROP = 0.005
MIN_COSINE = 0.98
CHECK_IMAGES = 192  # images embedded by both graphs for the check
_CALIBRATION = 32
_MIN_CHECK = 24  # fewer images than this judge nothing: fp32 (exact) is kept
_FOLDS = 3


def fast_network(network, cells: list, y: np.ndarray, task: str, seed: int,
                 check: bool = True):  # fmt: skip
    """(`network` on its fastest faithful runtime, a note for the user). `cells` and `y`: the
    training images and their class indices (or values, for regression); `check=False` (a short
    budget): ONNX fp32 without trying int8."""
    from shipml.encoders.image_onnx import export_image_onnx, quantize_image_int8

    started = time.monotonic()
    try:
        fp32 = network.with_onnx(export_image_onnx(network), kind="onnx")
    except Exception as exc:  # noqa: BLE001 - any export failure keeps the PyTorch network
        log.warning("image network: ONNX export failed (%s); PyTorch kept", exc)
        return network, f"images: encoded by PyTorch (ONNX export failed: {exc})"
    rows = _check_rows(y, task, seed)
    if not check:
        return fp32, "images: encoded by ONNX fp32 (no time to check int8)"
    if len(rows) < _MIN_CHECK:
        return fp32, "images: encoded by ONNX fp32 (too few images to check int8)"
    sample = [cells[i] for i in rows]
    try:
        calibration = network.pixels(sample[:_CALIBRATION])
        int8 = network.with_onnx(quantize_image_int8(fp32.runtime.model, calibration))
    except Exception as exc:  # noqa: BLE001 - a failed quantization keeps fp32
        log.warning("image network: int8 quantization failed (%s); fp32 kept", exc)
        return fp32, f"images: encoded by ONNX fp32 (int8 quantization failed: {exc})"
    exact, quick = fp32.encode(sample), int8.encode(sample)
    verdict = _compare(exact, quick, y[rows], task, seed)
    seconds = time.monotonic() - started
    if verdict["keep"]:
        return int8, (f"images: encoded by ONNX int8 (on {len(rows)} training images: "
                      f"{verdict['text']}; chosen in {seconds:.0f}s)")  # fmt: skip
    return fp32, f"images: encoded by ONNX fp32 (int8 not kept: {verdict['text']})"


def _check_rows(y: np.ndarray, task: str, seed: int) -> np.ndarray:
    """Up to CHECK_IMAGES rows, stratified by class for classifiers."""
    from shipml.learners.image import rows_that_fit

    n = min(len(y), CHECK_IMAGES)
    return rows_that_fit(y, task, float(n), 1.0, seed)


def _compare(exact: np.ndarray, quick: np.ndarray, y: np.ndarray, task: str, seed: int) -> dict:
    cosine = float(np.mean(_cosines(exact, quick)))
    if task == "regression":  # no classes to score: the vectors' agreement decides
        keep = cosine >= MIN_COSINE
        return {"keep": keep, "text": f"mean cosine with fp32 {cosine:.4f}"}
    a, b = _centroid_accuracy(exact, y, seed), _centroid_accuracy(quick, y, seed)
    keep = b >= a - MAX_DROP and cosine >= MIN_COSINE
    text = f"accuracy {b:.3f} vs fp32 {a:.3f}, mean cosine {cosine:.4f}"
    return {"keep": keep, "text": text}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)


def _centroid_accuracy(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Cross-validated accuracy of a nearest-centroid classifier (cosine) on standardized X."""
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-6)
    folds = np.random.default_rng(seed).permutation(len(y)) % _FOLDS
    right = 0
    for k in range(_FOLDS):
        train, test = folds != k, folds == k
        classes = np.unique(y[train])
        centroids = np.stack([X[train][y[train] == c].mean(axis=0) for c in classes])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
        guess = classes[np.argmax(X[test] @ centroids.T, axis=1)]
        right += int((guess == y[test]).sum())
    return right / len(y)
