"""Which words moved a text model's prediction (occlusion, shipml/explain_text.py), through the
Python API, the server and the CLI; and the text sections of the HTML report.

Data: 20 banking77 intents (tests/data/banking77_*slice.csv, CC BY 4.0). Numbers asserted here
were measured on these slices (all-MiniLM-L6-v2, seed 0) and kept with a margin.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from conftest import DATA, run_cli

pytest.importorskip("torch")
pytest.importorskip("transformers")

TRAIN = DATA / "banking77_slice.csv"
TEST = DATA / "banking77_test_slice.csv"
LOST = "I lost my card yesterday"
EVIL = "<script>alert('x')</script> my card got eaten by the ATM & I can't get it back"


@pytest.fixture(scope="module")
def text_registry(tmp_path_factory):
    return tmp_path_factory.mktemp("explain-registry")


@pytest.fixture(scope="module")
def embed_model(text_registry, tmp_path_factory):
    """Embed-mode model on the slice, registered as 'intents' version 1 (with its report)."""
    import shipml

    with pytest.MonkeyPatch.context() as mp:  # module fixtures start before the per-test home
        mp.setenv("SHIPML_HOME", str(tmp_path_factory.mktemp("explain-home")))
        return shipml.train(TRAIN, target="category", name="intents", time_budget=20,
                            n_trials=1, mode="embed", registry_uri=str(text_registry),
                            progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def tfidf_model():
    import shipml

    return shipml.train(TRAIN, target="category", time_budget=6, n_trials=1, mode="tfidf",
                        progress=False, report=False)  # fmt: skip


def score(model, texts: list[str], cls: str) -> np.ndarray:
    """Raw score of class `cls` for each text, straight from the model."""
    _, X = model.encode(pd.DataFrame({"text": texts}))
    return model.raw(X)[:, model.classes.index(cls)]


# -- occlusion -----------------------------------------------------------------------------------
def test_words_split_and_removal():
    from shipml.explain_text import split_words, without_word

    words = split_words("Card lost? My card, can't find it  (card)")
    assert [w.text for w in words] == ["Card", "lost", "My", "can't", "find", "it"]
    card = words[0]
    assert len(card.spans) == 3  # every occurrence, whatever the case
    assert without_word("Card lost? My card, can't find it  (card)", card.spans) == (
        "lost? My , can't find it ()"
    )


@pytest.mark.parametrize("which", ["embed_model", "tfidf_model"])
def test_lost_card_words_and_their_sign(which, request):
    model = request.getfixturevalue(which)
    [item] = model.explain_records({"text": LOST}, top=3)
    assert item["prediction"] == "lost_or_stolen_card"
    [reason] = item["reasons"]
    assert reason["column"] == "text" and reason["words_omitted"] == 0
    words = reason["words"]
    contributions = [w["contribution"] for w in words]
    assert contributions == sorted(contributions, key=abs, reverse=True)
    positive = [w["word"] for w in words if w["contribution"] > 0]
    assert {"lost", "card"} & set(positive[:2]), words
    # removing the top word lowers the predicted class's raw score by exactly that much
    top = words[0]
    assert top["contribution"] > 0
    without = " ".join(w for w in LOST.split() if w.lower() != top["word"].lower())
    full, rest = score(model, [LOST, without], item["prediction"])
    assert full - rest == pytest.approx(top["contribution"], abs=1e-4)
    # and the full score is what the reasons add up to
    assert item["baseline"] + reason["contribution"] == pytest.approx(full, abs=1e-4)


def test_embed_lost_card_measured(embed_model):
    """Measured: lost +4.9, card +3.5, the rest below 0.7 in absolute value."""
    words = embed_model.explain_records({"text": LOST})[0]["reasons"][0]["words"]
    by_word = {w["word"]: w["contribution"] for w in words}
    assert by_word["lost"] > 2.0 and by_word["card"] > 1.5
    assert abs(by_word.get("yesterday", 0.0)) < 1.0


def test_many_rows_long_text_and_empty_text(tfidf_model):
    long_text = " ".join(f"w{i}" for i in range(80)) + " refund please"
    rows = [{"text": LOST}, {"text": ""}, {"text": long_text}, {"text": "card card CARD lost"}]
    items = tfidf_model.explain_records(rows, top=2)
    assert len(items) == 4
    assert items[1]["reasons"] == [] or items[1]["reasons"][0]["words"] == []
    long_reason = items[2]["reasons"][0]
    assert long_reason["words_omitted"] == 82 - 64  # 82 distinct words, the first 64 tested
    assert "refund" not in {w["word"] for w in long_reason["words"]}  # word 81: not tested
    repeated = items[3]["reasons"][0]["words"]
    assert len([w for w in repeated if w["word"].lower() == "card"]) <= 1
    assert len(repeated) <= 10
    # words=False: the reasons as before, nothing else
    plain = tfidf_model.explain_records(rows, top=2, words=False)
    for a, b in zip(plain, items):
        assert [set(r) for r in a["reasons"]] == [{"column", "value", "contribution"}] * len(
            a["reasons"]
        )
        assert [r["contribution"] for r in a["reasons"]] == [
            r["contribution"] for r in b["reasons"]
        ]


def test_binary_text_words_are_log_odds(tmp_path):
    """Binary: words move the log-odds of the positive class (the row's contributions' units)."""
    import shipml

    frame = pd.read_csv(TRAIN)
    frame["card"] = np.where(frame["category"].str.contains("card"), "yes", "no")
    model = shipml.train(frame.drop(columns="category"), target="card", time_budget=5,
                         n_trials=1, mode="tfidf", progress=False, report=False)  # fmt: skip
    assert model.task == "binary"
    sentence = "my card payment was declined"
    [item] = model.explain_records({"text": sentence})
    words = item["reasons"][0]["words"]
    assert "card" in {w["word"] for w in words if w["contribution"] > 0}
    top = words[0]["word"]
    without = " ".join(w for w in sentence.split() if w != top)
    _, X = model.encode(pd.DataFrame({"text": [sentence, without]}))
    full, rest = model.raw(X)  # log-odds of the positive class
    assert full - rest == pytest.approx(words[0]["contribution"], abs=1e-6)


def test_explain_frame_has_compact_words(tfidf_model, credit_model, german):
    frame = tfidf_model.explain(pd.DataFrame({"text": [LOST]}), top=2)
    assert list(frame.columns) == ["row", "prediction", "rank", "column", "value",
                                   "contribution", "words"]  # fmt: skip
    assert re.match(r"^\w+ [+-]\d", frame["words"][0])
    # tabular models: the same table as before, no words column
    tabular = credit_model.explain(german.head(3), top=4)
    assert list(tabular.columns) == ["row", "prediction", "rank", "column", "value",
                                     "contribution"]  # fmt: skip
    records = credit_model.explain_records(german.head(3), top=4)
    assert all(set(r) == {"column", "value", "contribution"} for i in records for r in i["reasons"])


def test_variants_stay_out_of_the_embedding_cache(embed_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIPML_HOME", str(tmp_path))
    # a fresh cache object, in this test's home (restored afterwards)
    monkeypatch.setattr(embed_model.encoder.text_encoder, "_cache", None)
    rows = pd.read_csv(TEST).head(40)
    embed_model.explain_records(rows, top=1)
    shards = list((tmp_path / "cache" / "embeddings").rglob("*.keys.npy"))
    assert len(shards) == 1  # the real texts; none of their ~400 variants
    assert len(np.load(shards[0], allow_pickle=False)) == rows["text"].str.strip().nunique()
    assert embed_model.encoder.text_encoder.use_cache


# -- server and CLI ------------------------------------------------------------------------------
def test_server_explain_route_returns_words(embed_model, text_registry):
    from fastapi.testclient import TestClient

    from shipml.registry.store import Registry
    from shipml.serve.app import create_app
    from shipml.serve.keys import KeyStore

    reg = Registry(text_registry)
    key = KeyStore(reg.engine).create("explain-test", ["predict"])
    client = TestClient(create_app(["intents"], registry=reg, rate_per_s=1000, burst=1000))
    res = client.post("/v1/models/intents/explain?top=2",
                      json={"records": [{"text": LOST}, {"text": ""}]},
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert res.status_code == 200, res.text
    first, empty = res.json()["explanations"]
    assert first["prediction"] == "lost_or_stolen_card"
    words = first["reasons"][0]["words"]
    assert words and {"word", "contribution"} == set(words[0])
    assert words[0]["word"] in ("lost", "card")
    assert all(r.get("words", []) == [] for r in empty["reasons"])


def test_server_keeps_request_texts_out_of_the_embedding_cache(
    embed_model, text_registry, tmp_path, monkeypatch
):
    from fastapi.testclient import TestClient

    from shipml.registry.store import Registry
    from shipml.serve.app import create_app
    from shipml.serve.keys import KeyStore

    monkeypatch.setenv("SHIPML_HOME", str(tmp_path))
    reg = Registry(text_registry)
    key = KeyStore(reg.engine).create("cache-test", ["predict"])
    client = TestClient(create_app(["intents"], registry=reg, rate_per_s=1000, burst=1000))
    rows = pd.read_csv(TEST).drop_duplicates("text").head(40)
    body = {"records": rows[["text"]].to_dict("records")}
    res = client.post("/v1/models/intents/predict", json=body,
                      headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert res.status_code == 200, res.text
    labels = [p["label"] for p in res.json()["predictions"]]
    assert len(labels) == 40 and set(labels) <= set(embed_model.classes)
    assert not list(tmp_path.rglob("*.npy"))  # 40 texts: a training run would have cached them


def test_cli_explain_shows_words(embed_model, text_registry, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    pd.DataFrame({"text": [LOST, "[bold]where is my refund[/bold]"]}).to_csv(rows, index=False)
    reg = ["--registry-uri", text_registry]
    code, out, err = run_cli(["explain", "intents", "--data", rows, *reg], capsys)
    assert code == 0, err
    assert "top words" in out and re.search(r"(lost|card) \+\d", out)
    assert "[bold]" in out  # the user's text is shown as is, not read as rich markup
    code, out, err = run_cli(["explain", "intents", "--data", rows, "--json", *reg], capsys)
    assert code == 0, err
    records = json.loads(out)
    assert records[0]["reasons"][0]["words"][0]["word"] in ("lost", "card")
    csv = tmp_path / "reasons.csv"
    code, _, err = run_cli(["explain", "intents", "--data", rows, "-o", csv, *reg], capsys)
    assert code == 0, err
    assert "words" in pd.read_csv(csv).columns


# -- report --------------------------------------------------------------------------------------
def test_training_report_has_text_sections(embed_model):
    text = embed_model.report_path.read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    assert headings[:4] == ["Key metrics", "Plots", "Results per class", "Examples of errors"]
    assert "Most confused classes" in text and "Precision" in text
    errors = text.split('<section id="errors">')[1].split("</section>")[0]
    assert "misclassified rows" in errors
    # every error row shows a text of the training data, its real and predicted class
    cells = re.findall(r'<td class="example">(.*?)</td>', errors)
    assert 1 <= len(cells) <= 15
    import html

    train_texts = set(pd.read_csv(TRAIN)["text"].map(lambda t: " ".join(str(t).split())))
    for cell in cells:
        shown = html.unescape(cell)
        assert shown in train_texts or (shown.endswith("…") and len(shown) <= 200)


def test_evaluate_report_escapes_error_texts(embed_model, tmp_path):
    rows = pd.read_csv(TEST)
    for i, text in enumerate([EVIL, "x" * 500]):  # labelled with a class the model does not say
        predicted = embed_model.predict({"text": text})[0]
        rows.loc[i, ["text", "category"]] = [text, next(c for c in rows["category"]
                                                        if c != predicted)]  # fmt: skip
    metrics = embed_model.evaluate(rows, report=tmp_path / "eval.html")
    text = (tmp_path / "eval.html").read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; my card got eaten" in text
    assert "&amp; I can&#39;t" in text
    errors = text.split('<section id="errors">')[1].split("</section>")[0]
    assert "x" * 200 not in errors and "x" * 199 + "…" in errors  # cut at 200 characters
    assert "age_limit" in errors
    assert metrics["accuracy"] < 1.0


def test_many_classes_list_pairs_instead_of_the_matrix(tmp_path):
    from shipml.evaluate.metrics import classification_metrics
    from shipml.evaluate.report import write_report

    rng = np.random.default_rng(0)
    classes = [f"intent_{i}" for i in range(30)]
    y = rng.choice(classes, size=600)
    pred = np.where(rng.random(600) < 0.8, y, rng.choice(classes, size=600))
    pred[:25] = "intent_7"
    y[:25] = "intent_3"  # the most common mix-up: intent_3 -> intent_7
    metrics = classification_metrics(y, np.full((600, 30), 1 / 30), classes, y_pred=pred)
    examples = pd.DataFrame({"text": [f"row {i} <b>" for i in range(600)]})
    path = write_report(tmp_path / "r.html", title="30 intents", task="multiclass",
                        metrics=metrics, y_true=y, y_pred=pred, classes=classes,
                        examples=examples)  # fmt: skip
    text = path.read_text(encoding="utf-8")
    assert "too large to read as a picture" in text and 'alt="Confusion matrix"' not in text
    pairs = text.split("Most confused classes")[1].split("</table>")[0]
    cell = r'<td class="wrap">(.*?)</td>'
    first = re.search(r"<tbody>\s*<tr>" + cell + cell, pairs)
    assert first.groups() == ("intent_3", "intent_7")
    assert pairs.count("<tr>") == 11  # header + 10 pairs
    assert "row 0 &lt;b&gt;" in text and "<b>" not in text.split('id="errors"')[1]
    from shipml.errors import DataError

    with pytest.raises(DataError, match="examples has 3 rows"):
        write_report(tmp_path / "bad.html", title="t", task="multiclass", metrics=metrics,
                     y_true=y, y_pred=pred, classes=classes,
                     examples=examples.head(3))  # fmt: skip
