"""shipml's scikit-learn estimators against scikit-learn's own conformance suite."""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import check_estimator

from conftest import GERMAN
from shipml import AutoClassifier, AutoRegressor


@pytest.mark.slow
@pytest.mark.parametrize("estimator", [AutoClassifier(n_trials=1), AutoRegressor(n_trials=1)],
                         ids=["classifier", "regressor"])  # fmt: skip
def test_check_estimator(estimator):
    results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]  # fmt: skip
    assert not failed
    # The whole suite runs. One check is skipped by scikit-learn itself unless SCIPY_ARRAY_API=1
    # is set (check_array_api_input): inapplicable, shipml converts input to a DataFrame.
    assert len(results) > 45


def test_classifier_on_a_dataframe_with_categories():
    frame = pd.read_csv(GERMAN)
    X, y = frame.drop(columns="credit_risk"), frame["credit_risk"].map({1: "good", 2: "bad"})
    clf = AutoClassifier(n_trials=2).fit(X, y)
    assert list(clf.classes_) == ["bad", "good"]
    proba = clf.predict_proba(X.head(20))
    assert proba.shape == (20, 2)
    assert set(clf.predict(X)) <= {"bad", "good"}
    assert clf.score(X, y) > 0.7
    assert list(clf.feature_names_in_) == list(X.columns)
    assert clf.get_params()["n_trials"] == 2


def test_regressor_score():
    frame = pd.read_csv(GERMAN)
    X = frame[["duration_months", "installment_rate_pct_income", "age_years", "existing_credits"]]
    reg = AutoRegressor(n_trials=2).fit(X.to_numpy(), np.log(frame["credit_amount"]))
    assert reg.score(X.to_numpy(), np.log(frame["credit_amount"])) > 0.3
