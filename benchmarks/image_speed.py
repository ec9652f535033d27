"""Image-encoder throughput: PyTorch vs ONNX fp32 vs ONNX int8 (static QDQ), in one run.

The packaged EfficientNet-Lite0 encodes real photos: the first N/10 JPEGs of each class of
CIFAR-10's test split, read straight out of ../shared/datasets/cifar10/cifar10_jpg.zip (bytes
cells). The int8 graph is calibrated on 32 other photos (the first 3-4 of each train class).
For batch 1 and 16, with 1 and 2 threads: images/s of the network alone (pixels prepared
beforehand) and of `encode()` (decoding and resizing included), best of `--rounds` rounds that
each run every configuration once (so a busy spell of the machine falls on all of them); and
the agreement with PyTorch's vectors (cosine, mean and min).

Usage (from the repository root)::

    .venv/bin/python benchmarks/image_speed.py            # 256 photos
    .venv/bin/python benchmarks/image_speed.py --n 128
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import _import_shipml, datasets_dir  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")  # fmt: skip
SETTINGS = ((1, 1), (1, 2), (16, 1), (16, 2))  # (batch, threads)


def _photos(z: zipfile.ZipFile, split: str, n: int) -> list[bytes]:
    """The first photos of each class of `split`, classes in turn, n in all."""
    names = sorted(m for m in z.namelist() if m.startswith(f"{split}/") and m.endswith(".jpg"))
    by_class = {c: [m for m in names if m.split("/")[1] == c] for c in CLASSES}
    picked = [by_class[c][i] for i in range(n // len(CLASSES) + 1) for c in CLASSES][:n]
    return [z.read(m) for m in picked]


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return (a * (b / np.linalg.norm(b, axis=1, keepdims=True))).sum(axis=1)


def _timed(fn, *args):
    """(fn(*args), seconds it took)."""
    t0 = time.perf_counter()
    return fn(*args), time.perf_counter() - t0


def _rate(fn, n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _network(encoder, pixels: np.ndarray, batch: int):
    """A callable running the encoder's network (torch or ONNX) over `pixels`."""

    def run():
        for start in range(0, len(pixels), batch):
            encoder.forward(pixels[start : start + batch])

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=256, help="photos measured")
    parser.add_argument("--rounds", type=int, default=2, help="best of this many runs")
    args = parser.parse_args(argv)
    _import_shipml()
    import torch

    from shipml.encoders.image import load_image_encoder
    from shipml.encoders.image_onnx import export_image_onnx, quantize_image_int8

    with zipfile.ZipFile(datasets_dir() / "cifar10" / "cifar10_jpg.zip") as z:
        cells, calibration = _photos(z, "test", args.n), _photos(z, "train", 32)
    encoder = load_image_encoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph, export_s = _timed(export_image_onnx, encoder)
        int8, quantize_s = _timed(quantize_image_int8, graph, encoder.pixels(calibration))
    pixels, decode_s = _timed(encoder.pixels, cells)
    decode = len(cells) / decode_s
    print(f"# python benchmarks/image_speed.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"{len(cells)} CIFAR-10 test photos (32 px JPEG); export {export_s:.1f} s, quantize "
          f"{quantize_s:.1f} s (32 calibration photos); graph {len(graph) / 1e6:.1f} MB fp32, "
          f"{len(int8) / 1e6:.1f} MB int8; {os.cpu_count()} CPUs; decode + resize alone "
          f"{decode:,.0f} images/s\n")  # fmt: skip
    reference = encoder.encode(cells, batch_size=16)
    configs, agreement = [], {}
    for name, kind, model in (("PyTorch", None, None), ("ONNX fp32", "onnx", graph),
                              ("ONNX int8", "onnx-int8", int8)):  # fmt: skip
        for batch, threads in SETTINGS:
            runner = encoder if model is None else encoder.with_onnx(model, kind=kind,
                                                                     threads=threads)  # fmt: skip
            configs.append((name, batch, threads, runner))
        cosine = _cosine(configs[-1][3].encode(cells, batch_size=16), reference)
        agreement[name] = float(cosine.mean()), float(cosine.min())
    best: dict = {}
    for _ in range(args.rounds):  # every configuration once a round: the machine's load is shared
        for name, batch, threads, runner in configs:
            torch.set_num_threads(threads)
            runner.encode(cells[:batch], batch_size=batch)  # warm-up (threads, allocations)
            net = _rate(_network(runner, pixels, batch), len(cells), 1)
            full = _rate(functools.partial(runner.encode, cells, batch_size=batch), len(cells), 1)
            old = best.get((name, batch, threads), (0.0, 0.0))
            best[(name, batch, threads)] = max(old[0], net), max(old[1], full)
    rows = [(*key, *speeds, *agreement[key[0]]) for key, speeds in best.items()]
    base = {(b, t): (net, full) for name, b, t, net, full, _, _ in rows if name == "PyTorch"}
    print("| runtime | batch | threads | network img/s | × PyTorch | encode() img/s | × PyTorch "
          "| cos mean | cos min |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, batch, threads, net, full, mean, low in rows:
        b_net, b_full = base[(batch, threads)]
        print(f"| {name} | {batch} | {threads} | {net:,.1f} | {net / b_net:.2f}× | {full:,.1f} | "
              f"{full / b_full:.2f}× | {mean:.4f} | {low:.4f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
