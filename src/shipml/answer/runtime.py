"""The encoder's runtime for answering: PyTorch, or an int8 ONNX copy (encoders/onnx.py) when
it ranks the validation questions as well — what text models do (learners/runtime.py).

The int8 graph encodes one text per run (its vector never depends on the others of a
request), so a served question costs a few milliseconds without PyTorch. Both runtimes encode
the FAQ's texts and the validation questions of every fold (each searched with its own
paraphrase left out); int8 is kept when its Hit@1 (dense, every field) drops by at most
`MAX_DROP` (on one fold of 77 questions, one question was 0.013). Any failure keeps PyTorch
and says why.
"""

from __future__ import annotations

import logging
import time

import numpy as np

__all__ = ["pick_runtime", "MAX_DROP"]

log = logging.getLogger(__name__)
MAX_DROP = 0.005


def _hit1(queries: np.ndarray, vectors: np.ndarray, entry: np.ndarray, target: np.ndarray,
          n_entries: int, own: np.ndarray | None) -> float:  # fmt: skip
    starts = np.searchsorted(entry, np.arange(n_entries))
    sims = queries @ vectors.T
    if own is not None:  # each question's own text left out of the index
        asked = np.flatnonzero(own >= 0)
        sims[asked, own[asked]] = -np.inf
    fused = np.maximum.reduceat(sims, starts, axis=1)
    return float(np.mean(np.argmax(fused, axis=1) == target))


def pick_runtime(encoder, texts: list[str], entry: np.ndarray, queries: list[str],
                 target: np.ndarray, n_entries: int,
                 own: np.ndarray | None = None) -> tuple[object, dict]:  # fmt: skip
    """(the encoder to use, what was measured): the int8 ONNX encoder or `encoder`. `own`:
    the column in `texts` of each question's own text (a held-out paraphrase), left out of
    its search; -1: none."""
    from shipml.encoders.onnx import export_onnx, quantize_int8

    started = time.monotonic()
    try:
        quantized = encoder.with_onnx(quantize_int8(export_onnx(encoder)))
        base = _hit1(encoder.encode(queries), encoder.encode(texts), entry, target, n_entries,
                     own)  # fmt: skip
        fast = _hit1(quantized.encode(queries), quantized.encode(texts), entry, target,
                     n_entries, own)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any export/runtime failure: keep PyTorch
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        log.warning("ONNX int8 runtime not used: %s", reason)
        return encoder, {"runtime": "pytorch", "note": f"runtime: PyTorch (ONNX int8: {reason})"}
    kept = base - fast <= MAX_DROP
    note = (
        f"runtime: {'ONNX int8' if kept else 'PyTorch'} — validation Hit@1 {fast:.3f} with "
        f"the int8 encoder vs {base:.3f} with PyTorch on {len(queries)} questions "
        f"({'within' if kept else 'beyond'} the {MAX_DROP:.3f} allowed)"
    )
    info = {"runtime": "onnx-int8" if kept else "pytorch", "hit1_pytorch": round(base, 4),
            "hit1_onnx_int8": round(fast, 4), "seconds": round(time.monotonic() - started, 1),
            "note": note}  # fmt: skip
    return (quantized if kept else encoder), info
