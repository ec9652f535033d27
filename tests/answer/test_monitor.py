"""`shipml monitor` of an answer model, end to end: questions through the server, feedback, then
the answer rate, hand-over rate, helpful share and the unanswered questions grouped by meaning,
in the CLI output, its JSON and the HTML report."""

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from answer.helpdesk import OFF_TOPIC, faq_table, train_helpdesk
from conftest import run_cli
from shipml.registry.store import Registry
from shipml.serve.app import create_app
from shipml.serve.keys import KeyStore


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """Ten FAQ questions (helpful feedback on six, a correction on one) and the off-topic
    questions (marked not helpful when the model answered them) through the server."""
    import os

    os.environ["SHIPML_PII_SECRET"] = "answer-monitor-secret"
    folder = tmp_path_factory.mktemp("answer-monitor")
    model = train_helpdesk(folder)
    reg = Registry(folder)
    keys = KeyStore(reg.engine)
    ask_key, fb_key = keys.create("widget", ["predict"]), keys.create("fb", ["feedback"])
    faq = faq_table()
    answers = []
    app = create_app(["helpdesk"], registry=reg, rate_per_s=1000, burst=1000)
    with TestClient(app) as client:

        def post(path, body, key):
            res = client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
            assert res.status_code == 200, res.text
            return res.json()

        for question in [*faq["question"].head(10), *OFF_TOPIC]:
            answers.append(post("/v1/models/helpdesk/answer", {"question": question}, ask_key))
        app.state.predictor.log.flush()
        for body in answers[:6]:
            post("/v1/feedback", {"prediction_id": body["id"], "helpful": True}, fb_key)
        post("/v1/feedback", {"prediction_id": answers[6]["id"], "entry": faq["id"][0]}, fb_key)
        for body in answers[10:]:
            if not body["handover"]:
                post("/v1/feedback", {"prediction_id": body["id"], "helpful": False}, fb_key)
    os.environ.pop("SHIPML_PII_SECRET", None)
    return folder, model, answers


def test_monitor_counts_answers_handovers_and_helpfulness(traffic, tmp_path, capsys):
    folder, _, answers = traffic
    code, out, err = run_cli(["monitor", "helpdesk", "--since", "7d", "--json", "-o", tmp_path,
                              "--registry-uri", folder], capsys)  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    s = result["answers"]
    handed = sum(a["handover"] for a in answers)
    assert result["status"] == "checked" and result["task"] == "answer"
    assert s["n_questions"] == len(answers) == 17
    assert s["n_handover"] == handed and s["n_answered"] == 17 - handed
    assert s["answer_rate"] == pytest.approx((17 - handed) / 17)
    assert s["handover_rate"] == pytest.approx(handed / 17)
    rated = 7 + sum(not a["handover"] for a in answers[10:])
    correct_entry = answers[6]["entry"] == faq_table()["id"][0]
    helpful = 6 + correct_entry
    assert s["n_feedback"] == rated and s["n_helpful"] == helpful
    assert s["helpful_share"] == pytest.approx(helpful / rated)
    assert s["n_corrected"] == (0 if correct_entry else 1)


def test_unanswered_questions_are_grouped_by_meaning(traffic, tmp_path, capsys):
    folder, _, _ = traffic
    code, out, _ = run_cli(["monitor", "helpdesk", "--json", "-o", tmp_path,
                            "--registry-uri", folder], capsys)  # fmt: skip
    groups = json.loads(out)["answers"]["unanswered"]
    assert sum(g["count"] for g in groups) == len(OFF_TOPIC)  # every off-topic question, once
    assert [g["count"] for g in groups] == sorted((g["count"] for g in groups), reverse=True)
    members = [{g["question"], *g["examples"]} for g in groups]
    bitcoin, jobs = set(OFF_TOPIC[:3]), set(OFF_TOPIC[3:6])
    assert bitcoin in members and jobs in members  # each topic one group of three
    assert {OFF_TOPIC[6]} in members
    assert groups[0]["count"] == 3 and groups[-1]["count"] == 1


def test_monitor_text_output_and_report(traffic, tmp_path, capsys):
    folder, _, answers = traffic
    code, out, _ = run_cli(["monitor", "helpdesk", "-o", tmp_path, "--registry-uri", folder],
                           capsys)  # fmt: skip
    assert code == 0
    text = " ".join(out.split())
    assert "17 questions to helpdesk/1" in text
    assert "unanswered questions (the FAQ entries to write next)" in text
    assert "bitcoin" in text.lower()
    report = next(tmp_path.glob("monitor-helpdesk-*.html")).read_text()
    assert "Answers and hand-overs" in report and "FAQ entries to write next" in report
    assert "bitcoin" in report.lower() and "Answer rate" in report
    saved = json.loads(next(tmp_path.glob("monitor-helpdesk-*.json")).read_text())
    assert saved["answers"]["n_questions"] == len(answers)


def test_an_empty_window_is_no_data(traffic, tmp_path, capsys):
    folder, _, _ = traffic
    code, out, _ = run_cli(["monitor", "helpdesk", "--since", "2000-01-01", "--until",
                            "2000-01-02", "--json", "-o", tmp_path, "--registry-uri", folder],
                           capsys)  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == "no_data"


def test_grouping_without_a_server():
    from shipml.monitor.answer import group_questions

    questions = ["Can I pay with bitcoin?", "Do you take crypto like bitcoin?",
                 "Where is your shop in Berlin?"] * 2  # fmt: skip
    groups = group_questions(questions)
    assert [g["count"] for g in groups] == [4, 2]
    assert "bitcoin" in groups[0]["question"].lower()
    assert np.all([len(g["examples"]) <= 3 for g in groups])
    assert group_questions([]) == []
