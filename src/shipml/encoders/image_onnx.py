"""Fast image inference: the EfficientNet-Lite0 feature extractor as an ONNX graph, int8.

`export_image_onnx` traces the encoder's network (pixels (batch, 3, 224, 224) -> the 1,280
averaged channels, a dynamic batch axis); `quantize_image_int8` makes a static int8 copy of it.
`ImageRuntime` runs either in onnxruntime, so a model that stores one encodes images with
Pillow, NumPy and onnxruntime only: no PyTorch.

Why static QDQ quantization, with the first convolutions in fp32 (measured on this network,
2 shared CPU cores, onnxruntime 1.32, after `quant_pre_process`; calibration 32 CIFAR-10 train
photos; images/s: best of 3 interleaved runs, 2 threads unless said); cosine with the fp32
embeddings, min / mean over 100 CIFAR-10 test photos and over the 48 test defect images:

| int8 variant | cosine CIFAR | cosine defects | img/s b16 | img/s b1 (1 thread) |
|---|---|---|---|---|
| dynamic (`quantize_dynamic`, per-channel) | 0.35 / 0.64 | 0.39 / 0.63 | 9 | 6 |
| static QDQ, MinMax, per-channel weights | 0.946 / 0.983 | 0.884 / 0.960 | 206 | 101 |
| the same, first 5 convolutions fp32 (kept) | 0.984 / 0.994 | 0.979 / 0.992 | 172 | 98 |
| the same, first 7 convolutions fp32 | 0.989 / 0.996 | 0.983 / 0.994 | 170 | 95 |
| fp32 ONNX (reference) | 1 | 1 | 74 | 49 |

(Percentile calibration (99.99, 99.999), symmetric int8 activations, or keeping only the stem and
head in fp32 did no better than MinMax.) Dynamic quantization quantizes each convolution's
input on the fly and runs ConvInteger, which onnxruntime has no fast kernel for: slower than
fp32 and far off. Static QDQ (activation ranges calibrated once on real images, one scale per
output channel of every weight) runs onnxruntime's fused int8 convolutions. Static ranges
are fixed, so an image's vector never depends on the other images in its batch. Calibration
images should look like those the model will see: its own training images.

Threads: one thread for a single image, two for batches by default (`threads=` or
$SHIPML_ONNX_THREADS to choose). Medians of 4 interleaved runs, images/s, 1 vs 2 threads:

| graph | batch 1, load 1 | batch 16, load 1 | batch 16, load 5 (2 cores) |
|---|---|---|---|
| fp32 | 90 vs 129 | 84 vs 142 | 40 vs 36 |
| int8 | 172 vs 202 | 172 vs 282 | 121 vs 116 |

A second thread pays for batches on an idle core and costs nothing much on a busy one; a single
image (a request) keeps one thread so that concurrent requests run side by side.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

from shipml.encoders.onnx import OPSET, inference_session, onnxruntime, quiet_quantizer
from shipml.errors import UsageError

__all__ = [
    "ImageRuntime",
    "export_image_onnx",
    "quantize_image_int8",
    "KINDS",
    "INSTALL",
    "MAX_CALIBRATION",
]

KINDS = ("onnx", "onnx-int8")  # fp32 graph, static int8 graph
INSTALL = 'pip install "shipml[images]"'
_INPUT, _OUTPUT = "pixels", "features"
# The first five convolutions (stem, block 0, block 1's expansion and depthwise: the 112 x 112
# stage) stay fp32: in int8 they cost the most agreement (see the table above) for little time.
_FP32_CONVS = 5
MAX_CALIBRATION = 64  # images


def export_image_onnx(encoder) -> bytes:
    """The encoder's network (ImageEncoder, PyTorch) as an fp32 ONNX graph, in memory."""
    import torch

    net = encoder.module
    size = int(encoder.settings["size"])
    example = torch.zeros((2, 3, size, size), dtype=torch.float32)
    buffer = io.BytesIO()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on the padding's shape arithmetic
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=[_INPUT],
            output_names=[_OUTPUT],
            dynamic_axes={_INPUT: {0: "batch"}, _OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def quantize_image_int8(onnx_bytes: bytes, calibration: np.ndarray) -> bytes:
    """Static int8 (QDQ) copy of an fp32 image graph: per-channel int8 weights, uint8
    activations whose ranges (MinMax) are those seen on `calibration`, the (n, 3, size, size)
    network input of a few dozen real images (ImageEncoder.pixels); of more, `MAX_CALIBRATION`
    evenly spaced ones are used (the calibrator holds every activation of every image at once,
    about 10 MB an image: 0.5 GB peak for 32)."""
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise UsageError(
            f"calibration: expected (n, 3, size, size) pixels, got shape {calibration.shape}"
        )
    if len(calibration) > MAX_CALIBRATION:
        calibration = calibration[np.linspace(0, len(calibration) - 1, MAX_CALIBRATION).astype(int)]
    calibration = np.ascontiguousarray(calibration)
    onnxruntime(INSTALL)
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with quiet_quantizer(), tempfile.TemporaryDirectory(prefix="shipml-onnx-") as tmp:
        source, ready = Path(tmp) / "fp32.onnx", Path(tmp) / "ready.onnx"
        target = Path(tmp) / "int8.onnx"
        source.write_bytes(onnx_bytes)
        quant_pre_process(str(source), str(ready))  # shapes + graph clean-up, as ORT advises
        quantize_static(
            str(ready),
            str(target),
            _Calibration(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_full_resolution_stage(ready),
        )
        return target.read_bytes()


def _full_resolution_stage(path: Path) -> list[str]:
    """Names of the graph's nodes up to its `_FP32_CONVS`-th convolution and the clip after it:
    the stem and first blocks, kept in fp32 (a clip is kept with its convolution: a float
    convolution followed by a quantized clip loses the clipping)."""
    import onnx

    names, convs = [], 0
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        if convs == _FP32_CONVS:
            if node.op_type == "Clip":
                names.append(node.name)
            break
        names.append(node.name)
        convs += node.op_type == "Conv"
    return names


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol: one image per feed."""

    def __init__(self, pixels: np.ndarray) -> None:
        self._rows = iter(range(len(pixels)))
        self._pixels = pixels

    def get_next(self) -> dict | None:
        i = next(self._rows, None)
        return None if i is None else {_INPUT: self._pixels[i : i + 1]}


class ImageRuntime:
    """onnxruntime sessions over an image graph; `threads` intra-op threads (None:
    $SHIPML_ONNX_THREADS, else by batch size: 1 thread for one image (a request), 2 for
    batches; see benchmarks/image_speed.py)."""

    def __init__(self, model: bytes, kind: str, *, threads: int | None = None) -> None:
        if kind not in KINDS:
            raise UsageError(f"ONNX image runtime kind: expected one of {KINDS}, got {kind!r}")
        self.model = model
        self.kind = kind
        self.threads = threads or int(os.environ.get("SHIPML_ONNX_THREADS", "0") or 0) or None
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    def open(self) -> ImageRuntime:
        """Create the sessions now (a graph that does not parse fails here, not mid-request)."""
        for threads in [self.threads] if self.threads else [1, 2]:
            self._session(threads)
        return self

    def _session(self, threads: int):
        with self._lock:
            if threads not in self._sessions:
                self._sessions[threads] = inference_session(self.model, threads, fix=INSTALL)
            return self._sessions[threads]

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """(n, dim) float32 embeddings of (n, 3, size, size) network input."""
        threads = self.threads or (1 if len(pixels) == 1 else 2)
        (out,) = self._session(threads).run(None, {_INPUT: pixels})
        return np.asarray(out, dtype=np.float32)
