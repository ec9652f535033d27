"""The serving path's shortcuts (answer/retrieval.py) give what the plain computation gives:
the padded entry max and the candidates' evidence against `np.maximum.reduceat`, the
deduplicated dense index against the full product, and a model whose answer field weighs 0
(its answers left out of the dense index) against scoring every text as validation does."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from tests.conftest import DATA

from shipml.answer import AnswerModel, train_answer
from shipml.answer.confidence import candidate_features, rank
from shipml.answer.retrieval import DenseIndex, Scores, entry_max, field_texts

FAQ = DATA / "faq" / "shop_faq.csv"
QUESTIONS = [
    "my parcel is late",
    "can I pay with paypal",
    "refund for a broken lamp",
    "do you ship to Norway",
    "what's the capital of Mongolia",
    "will the customs office charge import duties",
]  # words of an answer only


@pytest.fixture(scope="module")
def model(encoder) -> AnswerModel:
    return train_answer(FAQ, encoder=encoder, seed=0, tune=False, runtime="pytorch")


def _entries(n_paraphrases: list[int]) -> list[dict]:
    return [{"id": str(i), "question": f"q{i}", "answer": f"a{i}",
             "paraphrases": [f"p{i}.{j}" for j in range(n)]}
            for i, n in enumerate(n_paraphrases)]  # fmt: skip


@pytest.mark.parametrize("counts", [[3, 0, 1, 2, 3], [40, 0, 1, 0, 0]])
def test_the_entry_max_and_the_candidates_evidence_are_reduceat_s(counts):
    texts = field_texts(_entries(counts))
    assert (texts.slots is None) is (max(counts) == 40)  # 42 x 5 slots for 51 texts: no table
    rng = np.random.default_rng(0)
    values = rng.random((4, len(texts.texts)), dtype=np.float32)
    plain = np.maximum.reduceat(values, texts.starts, axis=1)
    assert np.array_equal(entry_max(values, texts), plain)
    idx = rng.integers(0, texts.n_entries, size=(4, 3))
    scores = Scores(values, 10 * values, texts)
    dense, lexical = scores.candidates(idx, replace_weights(answer=1.0))
    assert np.array_equal(dense, np.take_along_axis(plain, idx, axis=1))
    assert np.allclose(lexical, 10 * dense)
    # answers weighing 0 are no evidence: the max runs over questions and paraphrases only
    asked = np.where(texts.field != 2, values, 0.0)
    without = np.take_along_axis(np.maximum.reduceat(asked, texts.starts, axis=1), idx, axis=1)
    assert np.array_equal(scores.candidates(idx, replace_weights(answer=0.0))[0], without)


def replace_weights(answer: float):
    from shipml.answer.retrieval import DEFAULT_SETTINGS

    return replace(DEFAULT_SETTINGS, answer=answer)


def test_identical_texts_share_one_column_and_score_the_same(encoder):
    faq = pd.read_csv(FAQ)
    texts = faq["question"].tolist() + faq["answer"].tolist()[:5] * 3  # answers shared 3 times
    vectors = encoder.encode(texts)
    index = DenseIndex(vectors)
    assert index._columns.shape[1] == len(faq) + 5
    queries = encoder.encode(QUESTIONS)
    assert np.allclose(index.cosine(queries), np.maximum(queries @ vectors.T, 0.0), atol=1e-6)
    distinct = DenseIndex(vectors[: len(faq)])
    assert distinct._inverse is None and distinct._columns.shape[1] == len(faq)


def test_a_model_whose_answers_weigh_nothing_leaves_them_out_and_answers_alike(model):
    settings = replace(model.settings, alpha=0.5, answer=0.0, centroid=0.3)
    lean = AnswerModel(model.entries, model.encoder, model.vectors, settings, model.calibrator,
                       model.threshold, dict(model.info))  # fmt: skip
    n_answers = len(model.entries)
    assert len(lean.searched.texts) == len(model.texts.texts) - n_answers
    assert lean.dense.vectors.shape[0] == len(lean.searched.texts)
    # what validation computes: every text scored, the answers weighted 0 (BM25 normalized
    # by its best over every text: for the last question, an answer's)
    q = model.encoder.encode(QUESTIONS)
    centroid = np.maximum(q @ lean.centroids, 0.0)
    full = Scores(DenseIndex(model.vectors).cosine(q), model.lexical.raw(QUESTIONS),
                  model.texts, centroid)  # fmt: skip
    fused = full.entries(settings)
    assert model.texts.field[full.lexical[-1].argmax()] == 2
    idx = rank(fused, 3)
    want = lean.calibrator(candidate_features(fused, *full.candidates(idx, settings), idx))
    got_idx, got_conf, got_fused = lean._ranked(QUESTIONS, 3)
    assert np.allclose(got_fused, fused, atol=1e-6)
    assert np.array_equal(got_idx, idx) and np.allclose(got_conf, want, atol=1e-9)
    assert [lean.entries[i]["id"] for i in got_idx[:2, 0]] == ["ship-late", "pay-methods"]


def test_every_fold_s_question_is_searched_without_its_own_paraphrase(encoder):
    from shipml.answer.faq import read_faq
    from shipml.answer.runtime import _hit1
    from shipml.answer.validation import every_question, make_plan

    entries, _ = read_faq(FAQ)
    texts = field_texts(entries)
    plan = make_plan(entries, None, 0, [])
    queries, target, own = every_question(entries, texts, plan)
    assert len(queries) == sum(map(len, plan.folds)) == 109 and len(plan.folds) == 3
    assert [texts.texts[c] for c in own] == queries
    assert (texts.entry[own] == target).all() and (texts.field[own] == 1).all()
    vectors, asked = encoder.encode(texts.texts), encoder.encode(queries)
    n = len(entries)
    assert _hit1(asked, vectors, texts.entry, target, n, None) == 1.0  # found itself
    left_out = _hit1(asked, vectors, texts.entry, target, n, own)
    assert 0.6 < left_out < 1.0


def test_a_negative_s_head_spreads_its_own_entry_s_mass_over_the_others():
    from shipml.answer.validation import _without_own

    proba = np.array([[0.7, 0.2, 0.1], [0.0, 0.0, 1.0]], dtype=np.float32)
    out = _without_own(proba, np.array([0, 2]))
    assert np.allclose(out[0], [0.0, 2 / 3, 1 / 3])  # as a softmax without entry 0
    assert np.array_equal(out[1], [0.0, 0.0, 0.0])  # nothing left to spread
