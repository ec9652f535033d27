"""A CLINC150 slice (tests/data/LICENSE-DATA.md): 20 intents x 15 training rows + 60 oos rows;
the test slice: 10 rows per intent + 150 oos rows."""

import pandas as pd
import pytest

from conftest import DATA

CLINC = DATA / "clinc150_slice_train.csv"
CLINC_TEST = DATA / "clinc150_slice_test.csv"


@pytest.fixture(scope="session")
def clinc_test() -> pd.DataFrame:
    return pd.read_csv(CLINC_TEST)


@pytest.fixture(scope="session")
def oos_model():
    """TF-IDF + linear on the slice, `oos` as the out-of-scope label (unregistered)."""
    import shipml

    return shipml.train(CLINC, "intent", out_of_scope="oos", mode="tfidf", families="linear",
                        n_trials=2, time_budget=60, progress=False)  # fmt: skip
