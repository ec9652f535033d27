"""Sentence-encoder throughput: PyTorch vs ONNX fp32 vs ONNX int8, in one run.

The packaged all-MiniLM-L6-v2 encodes banking77 test texts (../shared/datasets) with each
runtime, cache off: texts/s for one call on a batch of texts (sorted by length, as training and
batch predictions run) and ms per call for single texts (as a server sees them), plus how close
the vectors stay to PyTorch's (cosine).

Usage (from the repository root)::

    .venv/bin/python benchmarks/text_runtime.py            # 1000 batch texts, 200 single
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import _import_shipml, _read, datasets_dir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200)
    args = parser.parse_args(argv)
    _import_shipml()
    from shipml.encoders import load_encoder
    from shipml.encoders.onnx import export_onnx, quantize_int8

    texts = _read(datasets_dir() / "banking77" / "test.csv")["text"].tolist()[: args.texts]
    torch_encoder = load_encoder(cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        graph = export_onnx(torch_encoder)
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        int8 = quantize_int8(graph)
        quantize_s = time.perf_counter() - t0
    runtimes = {
        "PyTorch": torch_encoder,
        "ONNX fp32": torch_encoder.with_onnx(graph, kind="onnx"),
        "ONNX int8": torch_encoder.with_onnx(int8),
    }
    print(f"# python benchmarks/text_runtime.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"export {export_s:.1f} s, quantize {quantize_s:.1f} s; graph {len(graph) / 1e6:.0f} MB "
          f"fp32, {len(int8) / 1e6:.0f} MB int8; {os.cpu_count()} CPUs\n")  # fmt: skip
    rows, reference = [], None
    for name, encoder in runtimes.items():
        encoder.encode(texts[:32])  # warm-up
        t0 = time.perf_counter()
        vectors = encoder.encode(texts)
        batch = len(texts) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for text in texts[: args.single]:
            encoder.encode([text])
        single_ms = 1000 * (time.perf_counter() - t0) / args.single
        reference = vectors if reference is None else reference
        cosine = (vectors * reference).sum(axis=1)
        rows.append((name, batch, single_ms, float(cosine.mean()), float(cosine.min())))
    base_batch, base_single = rows[0][1], rows[0][2]
    print("| runtime | batch texts/s | × PyTorch | single text ms | × PyTorch | cos mean | min |")
    print("|---|---|---|---|---|---|---|")
    for name, batch, single_ms, mean, low in rows:
        print(f"| {name} | {batch:,.0f} | {batch / base_batch:.2f}× | {single_ms:.1f} | "
              f"{base_single / single_ms:.2f}× | {mean:.4f} | {low:.4f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
