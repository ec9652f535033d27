"""Reading FAQs and folders of pages, every bad input's error, and the retrieval pieces
(threshold choice, the approximate index) — no sentence encoder needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import DATA

from shipml.answer import AnswerWarning
from shipml.answer.confidence import choose_threshold, wilson_lower
from shipml.answer.documents import read_documents, split_html, split_markdown
from shipml.answer.faq import read_faq
from shipml.answer.retrieval import DenseIndex, Lexical
from shipml.errors import DataError

DOCS = DATA / "faq" / "docs"


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faq.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shop_faq_reads_with_its_ids_paraphrases_and_sources():
    entries, notes = read_faq(DATA / "faq" / "shop_faq.csv")
    assert len(entries) == 40 and notes == []
    late = next(e for e in entries if e["id"] == "ship-late")
    assert late["paraphrases"] == ["My parcel is late", "The package still hasn't come",
                                   "It's been two weeks and nothing has arrived"]  # fmt: skip
    assert late["category"] == "shipping" and late["url"] is None
    assert late["source"] == {"row": 6, "category": "shipping"}


def test_columns_match_case_and_spacing_and_paraphrases_split_on_newlines(tmp_path):
    frame = pd.DataFrame(
        {
            "Question ": ["Do you ship abroad?", "Opening hours?"],
            "ANSWER": ["Yes, to the EU.", "9 to 5."],
            "Para_phrases": ["ship to France?\nInternational delivery?", None],
        }
    )
    entries, _ = read_faq(frame)
    assert [e["id"] for e in entries] == ["1", "2"]  # by row, as strings
    assert entries[0]["paraphrases"] == ["ship to France?", "International delivery?"]
    assert entries[1]["paraphrases"] == []
    path = _csv(tmp_path, "id,question,answer\n7,a?,b\n8,c?,d\n")
    assert [e["id"] for e in read_faq(path)[0]] == ["7", "8"]


def test_an_empty_faq_is_refused(tmp_path):
    with pytest.raises(DataError, match="header but no data rows"):
        read_faq(_csv(tmp_path, "question,answer\n"))
    with pytest.raises(DataError, match="the FAQ has no rows"):
        read_faq(pd.DataFrame({"question": [], "answer": []}))


def test_a_missing_column_names_the_closest(tmp_path):
    with pytest.raises(DataError, match=r"no 'question' column .*closest: 'questoin'"):
        read_faq(_csv(tmp_path, "questoin,answer\na?,b\n"))
    with pytest.raises(DataError, match=r"no 'answer' column .*Columns found: 'question', 'reply'"):
        read_faq(_csv(tmp_path, "question,reply\na?,b\n"))


def test_an_empty_answer_or_question_is_named_by_row(tmp_path):
    with pytest.raises(DataError, match=r"faq.csv: row 3 has an empty answer \(column 'answer'\)"):
        read_faq(_csv(tmp_path, "question,answer\na?,b\nc?,\n"))
    with pytest.raises(DataError, match="row 2 has an empty question"):
        read_faq(_csv(tmp_path, 'question,answer\n"  ",b\n'))


def test_duplicate_questions_with_different_answers_warn_and_both_stay(tmp_path):
    path = _csv(tmp_path, "id,question,answer\na,Do you ship abroad?,Yes.\n"
                          "b,do you  ship abroad?,No.\nc,Do you ship abroad?,Yes.\n")  # fmt: skip
    with pytest.warns(AnswerWarning, match="two different answers \\(entries 'a' and 'b'\\)"):
        entries, notes = read_faq(path)
    assert [e["id"] for e in entries] == ["a", "b", "c"] and len(notes) == 1


def test_duplicate_ids_are_refused(tmp_path):
    with pytest.raises(DataError, match="id 'x' is used by two entries \\(row 2 and row 3\\)"):
        read_faq(_csv(tmp_path, "id,question,answer\nx,a?,b\nx,c?,d\n"))


def test_a_folder_of_pages_becomes_passages_under_their_headings():
    entries, notes = read_documents(DOCS)
    by_id = {e["id"]: e for e in entries}
    assert notes == [] and len(entries) == 8
    costs = by_id["shipping.md#3"]
    assert costs["question"] == "Shipping > Costs"
    assert costs["source"] == {"file": "shipping.md", "heading": "Shipping > Costs"}
    assert "# this line is code" in costs["answer"]  # a fenced line is not a heading
    assert by_id["shipping.md#4"]["question"] == "Shipping > Tracking > Tracking link"
    refunds = by_id["returns.html#2"]
    assert refunds["question"] == "Returns > Refunds" and "5 working days" in refunds["answer"]
    assert not any("ignore me" in e["answer"] or "color" in e["answer"] for e in entries)
    hours = by_id["opening_hours.txt#1"]
    assert hours["question"] == "opening hours" and hours["source"]["heading"] is None


def test_splitters():
    md = split_markdown("intro\n# A\none\n## B\ntwo\n# C ##\nthree")
    assert [h for h, _ in md] == ["", "A", "A > B", "C"]
    html = split_html("<h2>X</h2><p>a &amp; b</p><script>no</script><h3>Y</h3><p>c</p>")
    assert [(h, t.strip()) for h, t in html] == [("", ""), ("X", "a & b"), ("X > Y", "c")]


def test_bad_folders(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="the folder has no files"):
        read_documents(empty)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\ntext\n")
    (docs / "scan.pdf").write_bytes(b"%PDF-1.4 ...")
    with pytest.raises(DataError, match=r"1 file\(s\) that are not text documents \(scan.pdf\)"):
        read_documents(docs)
    (docs / "scan.pdf").unlink()
    (docs / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DataError, match="image.md: not a text document"):
        read_documents(docs)
    (docs / "image.md").unlink()
    (docs / "latin.txt").write_bytes("caf\xe9 ouvert".encode("latin-1"))
    with pytest.raises(DataError, match="latin.txt: not UTF-8 text"):
        read_documents(docs)
    (docs / "latin.txt").unlink()
    real = Path.read_bytes

    def locked(self):
        if self.name == "a.md":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", locked)
    with pytest.raises(DataError, match="a.md: cannot read the file \\(Permission denied\\)"):
        read_documents(docs)


def test_threshold_is_the_smallest_confidence_reaching_the_precision():
    conf = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    right = np.array([1, 1, 1, 1, 0, 1, 0], dtype=bool)
    threshold, curve, reached = choose_threshold(conf, right, 0.8, z=0)
    assert reached and threshold == 0.5  # 5 of 6 answered right
    assert curve[0] == {"threshold": 0.4, "answer_rate": 1.0, "precision": round(5 / 7, 4)}
    threshold, _, reached = choose_threshold(conf, right, 0.99, z=0)
    assert reached and threshold == 0.7
    weights = np.array([1, 1, 1, 1, 10, 1, 1.0])  # the wrong 0.6 counts ten times
    threshold, _, _ = choose_threshold(conf, right, 0.8, weights, z=0)
    assert threshold == 0.7
    _, _, reached = choose_threshold(np.array([0.9, 0.8]), np.array([False, True]), 0.9, z=0)
    assert not reached


def test_the_threshold_asks_more_of_fewer_questions():
    """The Wilson bound (one-sided 95 %): 4 right of 4 do not prove a precision of 0.8 (lower
    bound 0.60); 94 right of 100 prove 0.85 but not 0.9 (lower bound 0.888). By default one
    standard error: 94 of 100 prove 0.9 (lower bound 0.912)."""
    conf = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    right = np.array([1, 1, 1, 1, 0, 1, 0], dtype=bool)
    threshold, _, reached = choose_threshold(conf, right, 0.8, z=1.645)
    assert not reached and threshold == 0.7  # the highest bound: 4 of 4
    conf = np.linspace(1.0, 0.0, 110)
    right = np.ones(110, dtype=bool)
    right[[10, 25, 40, 55, 70, 85]] = False
    right[100:] = False  # the last 10: all wrong
    assert choose_threshold(conf, right, 0.85, z=0)[0] == conf[109]  # 94 / 110 = 0.855
    threshold, _, reached = choose_threshold(conf, right, 0.85, z=1.645)
    assert reached and threshold == conf[102]  # 94 / 103 = 0.913, bound 0.851
    assert choose_threshold(conf, right, 0.9, z=0)[0] == conf[103]  # 94 / 104 = 0.904
    threshold, _, reached = choose_threshold(conf, right, 0.9, z=1.645)
    assert not reached and threshold == conf[99]
    assert np.isclose(wilson_lower(np.array([0.94]), np.array([100.0]), 1.645)[0], 0.888,
                      atol=1e-3)  # fmt: skip
    assert choose_threshold(conf, right, 0.9)[0] == conf[100]  # 94 / 101 = 0.931


def test_the_approximate_index_finds_what_brute_force_finds():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:20] + 0.05 * rng.normal(size=(20, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact, approx = DenseIndex(vectors), DenseIndex(vectors, exact_max=1000)
    assert exact.kind == "exact" and approx.kind == "usearch"
    a, b = exact.cosine(queries), approx.cosine(queries)
    assert (a.argmax(axis=1) == np.arange(20)).all()
    assert (b.argmax(axis=1) == a.argmax(axis=1)).all()
    assert np.allclose(b.max(axis=1), a.max(axis=1), atol=1e-4)


def test_bm25_scores_shared_words_only():
    lex = Lexical(["my card has not arrived", "reset my password", "refund for a return"])
    scores = lex.raw(["card arrived yet?", "zzz", "the"])
    assert scores[0, 0] > 0 and scores[0, 1] == 0 and scores[0, 2] == 0
    assert not scores[1].any() and not scores[2].any()
