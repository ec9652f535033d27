"""Contrastive tuning of the encoder on an FAQ's own paraphrases (answer/tuning.py), and a
tuned model's storage."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from tests.conftest import DATA

from shipml.answer import load, train_answer
from shipml.answer.tuning import entry_mrr, tune_encoder

FAQ = DATA / "faq" / "shop_faq.csv"


@pytest.fixture(scope="module")
def small_faq() -> pd.DataFrame:
    return pd.read_csv(FAQ).head(15)


def test_tuning_learns_the_entries_pairs(encoder, small_faq):
    texts, entry, queries, target = [], [], [], []
    for i, row in enumerate(small_faq.itertuples()):
        paraphrases = row.paraphrases.split("|")
        for text in [row.question, *paraphrases[1:]]:
            texts.append(text)
            entry.append(i)
        queries.append(paraphrases[0])
        target.append(i)
    entry, target = np.array(entry), np.array(target)
    frozen = entry_mrr(encoder.encode(queries), encoder.encode(texts), entry, target, 15)
    result = tune_encoder(encoder, texts, entry, queries, target,
                          deadline=time.monotonic() + 300, seed=0)  # fmt: skip
    assert result.stopped == "planned steps done" and result.steps == result.planned_steps == 8
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]  # the in-batch-negatives loss goes down
    tuned = result.encoder
    assert "contrastively tuned on" in tuned.source and tuned.id != encoder.id
    again = entry_mrr(tuned.encode(queries), tuned.encode(texts), entry, target, 15)
    assert abs(again - result.best_score) < 1e-3  # the kept weights are the best scored
    assert result.best_score >= frozen - 0.05
    assert (
        tune_encoder(
            encoder,
            ["a", "b"],
            np.array([0, 1]),
            ["a"],
            np.array([0]),
            deadline=time.monotonic() + 10,
        )
        is None
    )  # no entry has two texts


def test_a_tuned_model_saves_its_encoder(encoder, small_faq, tmp_path):
    model = train_answer(
        small_faq, encoder=encoder, tune=True, time_budget=40, seed=0, runtime="pytorch"
    )
    note = next(n for n in model.notes if n.startswith("contrastive tuning"))
    kept = note.endswith("tuned encoder kept")
    assert ("contrastively tuned" in model.encoder.source) is kept
    m = model.info["metrics"]  # a tuned encoder: calibrated on the fold it never saw
    assert m["n_folds"] == 3 and m["calibrated_on_folds"] == (1 if kept else 3)
    questions = ["can I pay with paypal", "my parcel is broken", "what's the time in Tokyo"]
    again = load(model.save(tmp_path / "tuned"))
    assert again.encoder.id == model.encoder.id
    assert again.answer_many(questions) == model.answer_many(questions)


def test_a_short_budget_leaves_the_encoder_frozen_and_says_so(encoder, small_faq):
    model = train_answer(small_faq, encoder=encoder, time_budget=5, seed=0)
    assert any(n.startswith("encoder not tuned on the FAQ") for n in model.notes)
    assert model.encoder is encoder
