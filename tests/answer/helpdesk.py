"""The committed shop FAQ (tests/data/faq, CC0) and the training of one small answer model per
test module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "data"
FAQ = DATA / "faq" / "shop_faq.csv"
QUESTIONS = DATA / "faq" / "questions.csv"
BUDGET = 15  # seconds: a small FAQ, one short search
# Questions a shop FAQ has no entry for, in two topics (three wordings each) and one alone.
OFF_TOPIC = [
    "Can I pay with bitcoin?",
    "Do you accept bitcoin or other crypto currencies?",
    "Is payment in cryptocurrency like bitcoin possible?",
    "Are you hiring software engineers?",
    "Do you have job openings for developers?",
    "How do I apply for an engineering job at your company?",
    "What is the capital of Mongolia?",
]


def train_helpdesk(registry_uri, name: str = "helpdesk"):
    """`shipml.train` of the FAQ into the registry at `registry_uri` (no report: faster)."""
    import shipml

    return shipml.train(FAQ, task="answer", name=name, time_budget=BUDGET, seed=0,
                        registry_uri=str(registry_uri), report=False,
                        progress=False)  # fmt: skip


def train_churn(registry_uri):
    """A tiny classifier beside the answer model: routes that are for the other kind."""
    import shipml

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    table = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] + x[:, 1] > 0).astype(int)})
    return shipml.train(table, "y", name="churn", time_budget=5, n_trials=1,
                        registry_uri=str(registry_uri), progress=False,
                        report=False)  # fmt: skip


def faq_table() -> pd.DataFrame:
    return pd.read_csv(FAQ, dtype=str)


def main(args) -> tuple[int, str]:
    """`shipml ARGS` in-process outside a test (a module fixture has no capsys)."""
    import contextlib
    import io

    from shipml.cli import main as cli

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            cli([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return code, buffer.getvalue()
