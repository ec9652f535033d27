"""`shipml train --task answer` (an FAQ table, a folder of pages), `shipml ask`, `shipml evaluate`
on an answer model, and their errors (exit 2, one line, no traceback)."""

import json

import numpy as np
import pandas as pd
import pytest

from answer.helpdesk import BUDGET, FAQ, OFF_TOPIC, QUESTIONS, faq_table, main
from conftest import run_cli


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """`shipml train FAQ --task answer` into a registry of its own, and a tiny classifier."""
    reg = tmp_path_factory.mktemp("answer-cli")
    code, out = main(["train", FAQ, "--task", "answer", "--name", "helpdesk",
                      "--time-budget", BUDGET, "--min-precision", "0.9", "--no-report",
                      "--registry-uri", reg])  # fmt: skip
    assert code == 0, out
    table = tmp_path_factory.mktemp("table") / "table.csv"
    x = np.random.default_rng(0).normal(size=200)
    pd.DataFrame({"a": x, "y": (x > 0).astype(int)}).to_csv(table, index=False)
    code, text = main(["train", table, "--target", "y", "--name", "churn", "--time-budget", "5",
                       "--trials", "1", "--no-report", "--registry-uri", reg])  # fmt: skip
    assert code == 0, text
    return reg, out


def load(reg, ref="helpdesk"):
    import shipml

    return shipml.load(ref, registry_uri=str(reg))


def test_train_registers_and_says_what_it_chose(registry):
    reg, out = registry
    assert "registered helpdesk/1" in out and f"{len(faq_table())} entries" in out
    model = load(reg)
    assert model.task == "answer" and len(model.entries) == len(faq_table())
    assert f"hand-over threshold: {model.threshold:.3f}" in out
    assert "precision >= 0.9" in out and "hit@1" in out


def test_ask_prints_the_answer_its_entry_and_confidence(registry, capsys):
    reg, _ = registry
    row = faq_table().iloc[2]
    code, out, err = run_cli(["ask", "helpdesk", row["question"], "--registry-uri", reg], capsys)
    assert code == 0, err
    model = load(reg)
    want = model.answer(row["question"], k=3)
    assert f"entry {row['id']} (confidence {want['confidence']:.2f})" in out
    assert " ".join(row["answer"].split()) in " ".join(out.split())
    assert "alternatives:" in out and want["alternatives"][0]["entry"] in out


def test_ask_json_is_the_model_answer(registry, capsys):
    reg, _ = registry
    question = faq_table().iloc[5]["question"]
    code, out, _ = run_cli(["ask", "helpdesk", question, "--k", "4", "--json",
                            "--registry-uri", reg], capsys)  # fmt: skip
    assert code == 0
    body = json.loads(out)
    want = load(reg).answer(question, k=4)
    assert body["model"] == "helpdesk" and body["version"] == 1
    assert body["entry"] == want["entry"] and len(body["alternatives"]) == 3
    assert body["confidence"] == pytest.approx(want["confidence"], abs=1e-6)


def test_ask_hands_over_what_it_does_not_know(registry, capsys):
    reg, _ = registry
    model = load(reg)
    handed = next((q for q in OFF_TOPIC if model.answer(q)["handover"]), None)
    assert handed is not None, "the model answered every off-topic question"
    code, out, _ = run_cli(["ask", "helpdesk", handed, "--registry-uri", reg], capsys)
    assert code == 0
    assert "hand over to a person" in out and f"threshold {model.threshold:.2f}" in out
    assert "closest entries:" in out


def test_evaluate_on_labelled_questions(registry, capsys):
    reg, _ = registry
    code, out, err = run_cli(["evaluate", "helpdesk", "--data", QUESTIONS, "--json",
                              "--registry-uri", reg], capsys)  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out)
    want = load(reg).evaluate(pd.read_csv(QUESTIONS, dtype=str))
    for key in ("hit@1", "hit@3", "mrr", "answer_rate", "precision"):
        assert metrics[key] == pytest.approx(want[key]), key
    assert 0 <= metrics["hit@1"] <= metrics["hit@3"] <= 1
    code, out, _ = run_cli(["evaluate", "helpdesk", "--data", QUESTIONS, "--registry-uri", reg],
                           capsys)  # fmt: skip
    assert code == 0
    for key in ("hit@1", "hit@3", "mrr", "answer_rate", "precision"):
        assert key in out


def _bad(args, capsys, *words):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    text = " ".join(err.split())
    for word in words:
        assert word in text, text
    return text


def test_ask_errors(registry, capsys):
    reg = str(registry[0])
    _bad(["ask", "helpdesk", "", "--registry-uri", reg], capsys, "question")
    _bad(["ask", "helpdesk", "   ", "--registry-uri", reg], capsys, "question")
    _bad(["ask", "helpdesk", "x" * 2001, "--registry-uri", reg], capsys, "2,000")
    _bad(["ask", "helpdesk", "hi", "--k", "0", "--registry-uri", reg], capsys)
    _bad(["ask", "helpdesk", "hi", "--k", "51", "--registry-uri", reg], capsys)
    _bad(["ask", "helpdesk", "hi", "--k", "three", "--registry-uri", reg], capsys)
    _bad(["ask", "helpdes", "hi", "--registry-uri", reg], capsys, "helpdesk")  # did you mean
    _bad(["ask", "churn", "hi", "--registry-uri", reg], capsys, "not an answer model")
    _bad(["ask", "helpdesk", "--registry-uri", reg], capsys)  # no question


def test_other_commands_on_an_answer_model_say_what_to_use(registry, tmp_path, capsys):
    reg = str(registry[0])
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"question": ["hi"]}).to_csv(rows, index=False)
    _bad(["predict", "helpdesk", rows, "--registry-uri", reg], capsys, "shipml ask")
    _bad(["explain", "helpdesk", "--data", rows, "--registry-uri", reg], capsys, "shipml ask")


def test_evaluate_errors(registry, tmp_path, capsys):
    reg = str(registry[0])
    wrong = tmp_path / "wrong.csv"
    pd.DataFrame({"text": ["where is my parcel"], "faq": ["ship-late"]}).to_csv(wrong, index=False)
    _bad(["evaluate", "helpdesk", "--data", wrong, "--registry-uri", reg], capsys, "question")
    _bad(["evaluate", "helpdesk", "--data", tmp_path / "nope.csv", "--registry-uri", reg], capsys)


def test_train_errors(tmp_path, capsys):
    reg = str(tmp_path / "reg")
    table = tmp_path / "t.csv"
    pd.DataFrame({"a": range(20), "y": [0, 1] * 10}).to_csv(table, index=False)
    no_answer = tmp_path / "faq.csv"
    pd.DataFrame({"question": ["How long is delivery?"], "reply": ["3 days"]}).to_csv(
        no_answer, index=False
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("question,answer\n")
    common = ["--time-budget", "5", "--registry-uri", reg]
    _bad(["train", FAQ, "--task", "answer", "--target", "answer", *common], capsys, "--target")
    _bad(["train", FAQ, "--task", "answer", "--user", "u", *common], capsys, "--user")
    _bad(["train", FAQ, "--task", "answer", "--min-precision", "1.5", *common], capsys,
         "--min-precision")  # fmt: skip
    _bad(["train", FAQ, "--task", "answer", "--questions", tmp_path / "none.csv", *common],
         capsys, "--questions")  # fmt: skip
    _bad(["train", table, "--target", "y", "--min-precision", "0.9", *common], capsys,
         "--task answer")  # fmt: skip
    _bad(["train", tmp_path / "missing.csv", "--task", "answer", *common], capsys)
    _bad(["train", no_answer, "--task", "answer", *common], capsys, "answer")
    _bad(["train", empty, "--task", "answer", *common], capsys)
