"""Sentence-encoder load time and encode throughput, each measured in a fresh process.

    python benchmarks/encoder_load.py [--runs 3] [--texts 1000] [--src PATH]

One child process per run: it times `import shipml.encoders` + `load_encoder()` (the packaged
all-MiniLM-L6-v2; PyTorch and transformers imported first and timed apart, as a training run
has them loaded by then), then encodes the first `--texts` distinct banking77 and sst2 training
texts with the embedding cache off, and, as the peer in the same process,
`SentenceTransformer.encode` on the same texts. `--src` puts another checkout's src/ first on
the path (to compare before/after). Prints one markdown row per run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

DATA = Path(os.environ.get("SHIPML_DATASETS", "/work/shared/datasets"))

CHILD = r"""
import json, sys, time
import pandas as pd
n = int(sys.argv[1]); data = sys.argv[2]
texts = {
    "banking77": list(dict.fromkeys(pd.read_csv(f"{data}/banking77/train.csv")["text"]))[:n],
    "sst2": list(dict.fromkeys(pd.read_csv(f"{data}/sst2/train.csv")["sentence"]))[:n],
}
t0 = time.perf_counter()
import torch, transformers  # noqa: E401 - a training run has these loaded already
t1 = time.perf_counter()
from shipml.encoders import load_encoder
enc = load_encoder(cache=False)
t2 = time.perf_counter()
out = {"import_torch_s": t1 - t0, "load_s": t2 - t1}
enc.encode(texts["sst2"][:16])  # warm-up
for name, batch in texts.items():
    t = time.perf_counter(); enc.encode(batch)
    out[f"{name}_per_s"] = len(batch) / (time.perf_counter() - t)
from sentence_transformers import SentenceTransformer
from shipml.encoders.loading import packaged_folder
peer = SentenceTransformer(str(packaged_folder()), device="cpu", local_files_only=True)
peer.encode(texts["sst2"][:16])
for name, batch in texts.items():
    t = time.perf_counter(); peer.encode(batch, batch_size=64)
    out[f"{name}_st_per_s"] = len(batch) / (time.perf_counter() - t)
print(json.dumps(out))
"""

COLUMNS = ["import_torch_s", "load_s", "banking77_per_s", "banking77_st_per_s", "sst2_per_s",
           "sst2_st_per_s"]  # fmt: skip


def run(src: Path | None, n: int) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", TOKENIZERS_PARALLELISM="false")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(DATA)], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--src", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = [run(args.src, args.texts) for _ in range(args.runs)]
    print("| run | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{row[c]:.2f}" for c in COLUMNS) + " |")
    medians = {c: statistics.median(r[c] for r in rows) for c in COLUMNS}
    print("| median | " + " | ".join(f"{medians[c]:.2f}" for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
