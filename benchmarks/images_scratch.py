"""scikit-learn's digits (8 x 8 grey, 1,797 images, bundled with scikit-learn): shipml's
`scratch` CNN against frozen EfficientNet-Lite0 embeddings + logistic regression and logistic
regression on the raw pixels, in one run, on the same split.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src .venv/bin/python benchmarks/images_scratch.py \
        --time-budget 60

Train / test: 1,297 / 500 images (stratified, seed 0). Every image goes through shipml as PNG
bytes. The CNN sees them upscaled to 32 px, holds out 15% of its training images for early
stopping, and trains until the budget (decoding included). Prints one markdown table: test
accuracy, macro F1, train wall time (decoding / embedding included), predict images/s.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    grey = np.round(image * (255 / 16)).astype(np.uint8)  # digits are 0..16
    Image.fromarray(grey, mode="L").save(out, format="PNG")
    return out.getvalue()


def _scores(y, pred) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return accuracy_score(y, pred), f1_score(y, pred, average="macro")


def _scratch(cells, y, train, test, budget: float, seed: int):
    from shipml.learners.image_cnn import fit_cnn, prepare_pixels

    t0 = time.monotonic()
    deadline = t0 + budget
    pixels = prepare_pixels([cells[i] for i in train], 32)
    rows = np.random.default_rng(seed).permutation(len(train))
    n_valid = round(0.15 * len(train))
    fitted = fit_cnn(pixels, y[train], rows[n_valid:], rows[:n_valid], n_classes=10,
                     deadline=deadline, seed=seed)  # fmt: skip
    fit = time.monotonic() - t0
    t0 = time.monotonic()
    pred = fitted.predict_proba(fitted.pixels([cells[i] for i in test])).argmax(1)
    speed = len(test) / (time.monotonic() - t0)
    s = fitted.summary
    note = (f"{s['steps']} steps ({s['epochs']:.0f} epochs of {s['batch']}), best at step "
            f"{s['best_step']}, {s['stopped']}")  # fmt: skip
    return _scores(y[test], pred), fit, speed, note


def _embeddings(cells, y, train, test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shipml.encoders.image import load_image_encoder

    t0 = time.monotonic()
    encoder = load_image_encoder()
    X = encoder.encode([cells[i] for i in train])
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    est.fit(X, y[train])
    fit = time.monotonic() - t0
    t0 = time.monotonic()
    pred = est.predict(encoder.encode([cells[i] for i in test]))
    speed = len(test) / (time.monotonic() - t0)
    return _scores(y[test], pred), fit, speed, "1,280-d, frozen; LR C=0.1 on standardized"


def _raw(images, y, train, test):
    from sklearn.linear_model import LogisticRegression

    X = images.reshape(len(images), -1) / 16.0
    t0 = time.monotonic()
    est = LogisticRegression(max_iter=5000).fit(X[train], y[train])
    fit = time.monotonic() - t0
    t0 = time.monotonic()
    pred = est.predict(X[test])
    speed = len(test) / max(time.monotonic() - t0, 1e-9)
    return _scores(y[test], pred), fit, speed, "the 64 pixels, C=1"


def main() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-budget", type=float, default=60.0, help="CNN seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    digits = load_digits()
    images, y = digits.images, digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=500, random_state=args.seed,
                                   stratify=y)  # fmt: skip
    cells = [_png(image) for image in images]
    runs = {
        f"shipml scratch CNN ({args.time_budget:.0f} s budget)": lambda: _scratch(
            cells, y, train, test, args.time_budget, args.seed),
        "EfficientNet-Lite0 embeddings + LR": lambda: _embeddings(cells, y, train, test),
        "raw pixels + LR": lambda: _raw(images, y, train, test),
    }  # fmt: skip
    print(f"digits: {len(train):,} train / {len(test):,} test images, seed {args.seed}\n")
    print("| method | accuracy | macro F1 | train s | predict img/s | notes |")
    print("|---|---|---|---|---|---|")
    for name, run in runs.items():
        (accuracy, f1), fit, speed, note = run()
        print(f"| {name} | {accuracy:.3f} | {f1:.3f} | {fit:.1f} | {speed:,.0f} | {note} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
