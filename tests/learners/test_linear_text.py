"""The linear family on TF-IDF features: the vocabulary follows the rows, and no term is erased
or blown up by the design's clip and scaling."""

import numpy as np
import pandas as pd

from conftest import DATA
from shipml.data.features import text_width
from shipml.learners.linear import LinearDesign


def test_vocabulary_width_follows_the_rows():
    assert text_width(1_500) == 2_000
    assert text_width(200) == 5_000  # a short table keeps a wide vocabulary
    assert text_width(100_000) == 300  # a long one stays within memory
    assert text_width(1_500, n_text_columns=2) == 1_000


def _tfidf_matrix():
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = pd.read_csv(DATA / "banking77_slice.csv")["text"]
    return TfidfVectorizer(sublinear_tf=True).fit_transform(texts).toarray()


def test_rare_terms_survive_the_clip_and_keep_one_scale():
    X = _tfidf_matrix()
    rare = np.flatnonzero((X > 0).sum(axis=0) == 1)  # words in one of 300 texts
    assert rare.size > 50
    design = LinearDesign.fit(X, [])
    Z = design.transform(X)
    # each rare word still marks its text (the 0.5-99.5 % clip used to set it to 0 everywhere)
    assert (np.abs(Z[:, rare]).max(axis=0) > 0).all()
    # weights are scaled by one factor, not standardized: a rare word is not blown up
    # beyond a common one (standardizing multiplied a word in 1 of 300 texts by ~17x more)
    present = (X > 0).mean(axis=0)
    common = np.argmax(np.where(present < 0.5, present, 0))  # a word in many of the texts
    assert present[common] > 0.1
    ratio = Z[:, rare].max(axis=0) / X[:, rare].max(axis=0)
    inside = (X[:, common] > 0) & (X[:, common] < design.high[common])  # not clipped
    ratio = np.r_[ratio, Z[inside, common] / X[inside, common]]
    assert np.allclose(ratio, ratio[0])
    words = present < 0.5  # (a word in most texts is standardized like any number)
    assert np.allclose(Z[:, words][X[:, words] == 0], 0.0)  # absent words stay exactly zero


def test_flags_and_numbers_are_still_standardized():
    rng = np.random.default_rng(0)
    flags = (rng.random(400) < 0.05).astype(float)  # a rare 0/1 flag: not a TF-IDF weight
    amount = rng.lognormal(3, 1, 400)
    Z = LinearDesign.fit(np.column_stack([flags, amount]), []).transform(
        np.column_stack([flags, amount])
    )
    assert abs(Z[:, 0].mean()) < 1e-9 and abs(Z[:, 0].std() - 1) < 1e-9
    assert abs(Z[:, 1].mean()) < 1e-9


def test_linear_on_text_is_as_good_as_tfidf_and_logistic_regression():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    import shipml

    train = pd.read_csv(DATA / "banking77_slice.csv")
    test = pd.read_csv(DATA / "banking77_test_slice.csv")
    known = test[test["category"].isin(set(train["category"]))]
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    lr = LogisticRegression(max_iter=2000).fit(vec.fit_transform(train["text"]), train["category"])
    baseline = (lr.predict(vec.transform(known["text"])) == known["category"]).mean()
    model = shipml.train(
        train, "category", mode="tfidf", families="linear", n_trials=2, seed=0, report=False
    )
    ours = (np.asarray(model.predict(known)) == known["category"].to_numpy()).mean()
    assert ours >= baseline - 0.03, (ours, baseline)
