"""Fast inference: a sentence encoder exported to ONNX and quantized to int8 (onnxruntime).

`export_onnx` traces the encoder's whole module (stack.py: every sentence-transformers module —
Transformer, Pooling, Dense, Normalize — and the final normalization), so the graph maps
(input_ids, attention_mask) straight to the sentence vectors; `quantize_int8` stores the
weights of its matrix products as int8 (dynamic quantization: activations are quantized on the
fly, one range per tensor — so int8 runs one text at a time, and a text's vector never depends
on the other texts of a request). `OnnxRuntime` runs such a graph; a SentenceEncoder using one
needs neither PyTorch nor transformers, only `tokenizers`, `onnxruntime` and NumPy, so a served
model starts fast.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from shipml.encoders import deps
from shipml.errors import MissingDependency

__all__ = [
    "OnnxRuntime",
    "export_onnx",
    "quantize_int8",
    "onnxruntime",
    "inference_session",
    "quiet_quantizer",
    "OPSET",
]

log = logging.getLogger(__name__)
OPSET = 17


def onnxruntime(fix: str = deps.FIX):
    """The onnxruntime module, or a MissingDependency ending with `fix` (the extra to install)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependency(f"ONNX inference needs onnxruntime: {fix}") from exc
    return ort


def inference_session(model: bytes, threads: int | None = None, *, fix: str = deps.FIX):
    """A CPU onnxruntime session over graph bytes: `threads` intra-op threads (default:
    $SHIPML_ONNX_THREADS, else up to 2), one inter-op thread, no spinning (shared CPUs)."""
    ort = onnxruntime(fix)
    options = ort.SessionOptions()
    threads = threads or int(os.environ.get("SHIPML_ONNX_THREADS", "0") or 0)
    options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def quiet_quantizer():
    """Within: onnxruntime.quantization's per-tensor chatter (on the root logger) is dropped."""
    root = logging.getLogger()
    quiet = _QuantizerChatter()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def export_onnx(encoder) -> bytes:
    """The encoder (every module: weights, pooling, Dense, normalization) as an ONNX graph, in
    memory."""
    torch = deps.torch()
    wrapper = encoder.module.eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    buffer = io.BytesIO()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about constants: checked by the caller
        torch.onnx.export(
            wrapper,
            (ids, mask),
            buffer,
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "sentence": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def quantize_int8(onnx_bytes: bytes) -> bytes:
    """Dynamic int8 quantization of the graph's matrix-product weights."""
    onnxruntime()  # a missing extra says how to fix it
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_quantizer(), tempfile.TemporaryDirectory(prefix="shipml-onnx-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(onnx_bytes)
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,  # one scale per output column: closer to the float vectors
        )
        return target.read_bytes()


class _QuantizerChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


class OnnxRuntime:
    """onnxruntime sessions over sentence-vector graph bytes, created on first use; `threads`:
    the intra-op threads of a run (None: `session_for` chooses). Settable: one session per
    thread count is kept."""

    def __init__(self, model: bytes, kind: str, *, threads: int | None = None) -> None:
        self.model = model
        self.kind = kind  # "onnx-int8" or "onnx"
        self.threads = threads
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    def open(self) -> OnnxRuntime:
        """Create the session now (a graph that does not parse fails here, not mid-request)."""
        self.session_for(1)  # what a served question runs on
        return self

    def session_for(self, texts: int):
        """The session for a request of `texts` texts: `threads`, else $SHIPML_ONNX_THREADS,
        else one thread for a single text and up to two for more. One question on a
        10,000-entry FAQ, 1 vs 2 threads interleaved question by question (answer() p50 / p99
        ms, load 4.4 on 2 cores): 3.4 / 11.8 vs 5.3 / 12.4 (benchmarks/assistant_latency.py
        --threads 1,2)."""
        threads = self.threads or int(os.environ.get("SHIPML_ONNX_THREADS", "0") or 0)
        threads = threads or (1 if texts == 1 else min(2, os.cpu_count() or 1))
        if threads not in self._sessions:
            with self._lock:
                if threads not in self._sessions:
                    self._sessions[threads] = inference_session(self.model, threads)
        return self._sessions[threads]

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        session = self.session_for(len(ids))
        if self.kind != "onnx-int8":
            (out,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
            return np.asarray(out, dtype=np.float32)
        # Dynamic int8 quantizes activations with one range per tensor: in a batch, a text's
        # vector would depend on its neighbours and their padding. One text per run keeps a
        # prediction the same whatever else is in the request (and the cache consistent).
        rows = []
        for row, row_mask in zip(ids, mask):
            n = int(row_mask.sum()) or 1
            feed = {"input_ids": row[None, :n], "attention_mask": row_mask[None, :n]}
            rows.append(session.run(None, feed)[0][0])
        return np.asarray(rows, dtype=np.float32).reshape(len(ids), -1)
