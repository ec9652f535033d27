"""`shipml retrain` of an answer model, end to end: answers through the server, feedback that
confirms or corrects them, then a new version whose entries hold those questions as paraphrases
and answers the corrected question with the right entry; promoted like any model."""

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from answer.helpdesk import OFF_TOPIC, QUESTIONS, faq_table, train_helpdesk
from conftest import run_cli
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore


def pick(model):
    """From the labelled real questions: two the model answers right, two it hands over (the
    first gets its right entry as feedback, the second none)."""
    table = pd.read_csv(QUESTIONS, dtype=str)
    table = table[table["expected_id"] != "none"]
    answered, handed = [], []
    for question, expected in zip(table["question"], table["expected_id"]):
        got = model.answer(question)
        if not got["handover"] and got["entry"] == expected:
            answered.append((question, expected))
        elif got["handover"]:
            handed.append((question, expected))
    assert len(answered) >= 2 and len(handed) >= 2, (answered, handed)
    return [*answered[:2], *handed[:2]]


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """Feedback: helpful on two answers, the right entry for a hand-over, nothing on another
    hand-over; an off-topic question marked not helpful. Then `shipml retrain helpdesk --json`."""
    import os

    from answer.helpdesk import main

    os.environ["SHIPML_PII_SECRET"] = "answer-retrain-secret"
    folder = tmp_path_factory.mktemp("answer-retrain")
    model = train_helpdesk(folder)
    asked = pick(model)
    reg = Registry(folder)
    keys = KeyStore(reg.engine)
    ask_key, fb_key = keys.create("widget", ["predict"]), keys.create("fb", ["feedback"])
    app = create_app(["helpdesk"], registry=reg, rate_per_s=1000, burst=1000)
    with TestClient(app) as client:

        def post(path, body, key):
            res = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
            assert res.status_code == 200, res.text
            return res.json()

        code, text = main(["retrain", "helpdesk", "--registry-uri", folder])
        assert code == 2 and "no feedback" in text and "Traceback" not in text  # none yet
        answers = [post("/v1/models/helpdesk/answer", {"question": q}, ask_key)
                   for q in [*(q for q, _ in asked), OFF_TOPIC[0]]]  # fmt: skip
        app.state.predictor.log.flush()
        for body in answers[:2]:
            post("/v1/feedback", {"prediction_id": body["id"], "helpful": True}, fb_key)
        right = asked[2][1]
        post("/v1/feedback", {"prediction_id": answers[2]["id"], "entry": right}, fb_key)
        post("/v1/feedback", {"prediction_id": answers[4]["id"], "helpful": False}, fb_key)
    os.environ.pop("SHIPML_PII_SECRET", None)
    code, text = main(["retrain", "helpdesk", "--json", "--registry-uri", folder])
    assert code == 0, text
    return folder, model, asked, json.loads(text)


def load(folder, ref):
    import shipml

    return shipml.load(ref, registry_uri=str(folder))


def test_confirmed_questions_become_paraphrases_of_a_new_version(retrained):
    folder, old, asked, result = retrained
    assert result["current"] == 1 and result["new"] == 2
    assert result["rows_feedback_train"] == 3 and result["rows_original"] == len(old.entries)
    new = load(folder, "helpdesk/2")
    by_id = {e["id"]: e for e in new.entries}
    for question, entry in asked[:3]:  # helpful answers and the corrected hand-over
        assert question in by_id[entry]["paraphrases"]
    everywhere = [p for e in new.entries for p in e.get("paraphrases") or []]
    assert asked[3][0] not in everywhere and OFF_TOPIC[0] not in everywhere
    old_count = sum(len(e.get("paraphrases") or []) for e in old.entries)
    assert len(everywhere) == old_count + 3


def test_the_new_version_answers_the_corrected_question_right(retrained):
    folder, old, asked, _ = retrained
    new = load(folder, "helpdesk/2")
    question, right = asked[2]
    assert old.answer(question)["handover"]  # version 1 handed it over
    got = new.answer(question, k=3)
    assert got["entry"] == right and got["handover"] is False
    assert new.answer(asked[3][0])["handover"]  # no feedback on it: unchanged
    assert new.threshold == pytest.approx(old.threshold)


def test_the_new_version_is_promoted_like_any_model(retrained, capsys):
    folder = retrained[0]
    code, _, err = run_cli(["models", "promote", "helpdesk", "2", "--alias", "production",
                            "--registry-uri", folder], capsys)  # fmt: skip
    assert code == 0, err
    question, right = retrained[2][2]
    code, out, _ = run_cli(["ask", "helpdesk@production", question, "--json",
                            "--registry-uri", folder], capsys)  # fmt: skip
    assert json.loads(out)["version"] == 2 and json.loads(out)["entry"] == right


def test_retrain_text_output_and_errors(retrained, tmp_path, capsys):
    folder = retrained[0]
    code, out, _ = run_cli(["retrain", "helpdesk/1", "--registry-uri", folder], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "helpdesk/3" in text and "3 confirmed question(s) added as paraphrases" in text
    assert "promote it with: shipml models promote helpdesk 3" in text
    table = tmp_path / "faq.csv"
    faq_table().to_csv(table, index=False)
    code, out, err = run_cli(["retrain", "helpdesk", "--data", table, "--registry-uri", folder],
                             capsys)  # fmt: skip
    assert code == 2 and "retrains on its feedback only" in " ".join(err.split())
