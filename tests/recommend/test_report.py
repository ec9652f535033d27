"""The recommender's HTML report, rendered from a real evaluation summary."""

from __future__ import annotations

import html
import re

import pytest

from shipml.errors import UsageError
from shipml.recommend.evaluation import evaluate_ranking
from shipml.recommend.protocol import split_log
from shipml.recommend.report import write_report

from .logs_for_eval import cooccurrence_scorer, shop_log

TRIALS = [
    {"number": 0, "name": "popular", "value": 0.08, "metric": "ndcg@10", "elapsed_s": 0.2,
     "state": "complete"},
    {"number": 1, "name": "itemknn <k=50>", "value": 0.31, "metric": "ndcg@10",
     "elapsed_s": 1.5, "state": "complete"},
]  # fmt: skip


@pytest.fixture(scope="module")
def evaluated():
    log = shop_log(n_users=250, n_items=160, seed=21)
    split = split_log(log)
    summary = evaluate_ranking(cooccurrence_scorer(split.train_val), split.test,
                               split.train_val, n_examples=3)  # fmt: skip
    names = {f"i{i}": f"<script>alert({i})</script> Shoe {i}" for i in range(log.n_items)}
    return split, summary, names


def text_of(page: str) -> str:
    """The page's visible text: tags dropped, entities decoded, spaces collapsed."""
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.fixture(scope="module")
def page(tmp_path_factory, evaluated):
    split, summary, names = evaluated
    folder = tmp_path_factory.mktemp("report")
    path = write_report(folder / "r" / "report.html", title="Shop <recs>", summary=summary,
                        protocol={"description": split.description, "counts": split.counts},
                        model_info={"members": "itemknn", "trials": TRIALS,
                                    "candidates": [{"name": "itemknn", "score": 0.31,
                                                    "weight": 1.0}]},
                        notes=["trained <fast>"], item_names=names)  # fmt: skip
    return path.read_text()


def test_the_report_states_the_protocol_and_the_baseline(page, evaluated):
    split, summary, _ = evaluated
    text = text_of(page)
    assert " ".join(split.description.split()) in text
    assert "Shop <recs>" in text and "<recs>" not in page
    for part in ("Training", "Validation (held out)", "Test (held out)"):
        assert part in text
    # the full-ranking table: the model's and the baseline's NDCG@10 side by side
    model = summary["model"]["full"]["ndcg@10"]
    pop = summary["popularity"]["full"]["ndcg@10"]
    assert re.search(rf"NDCG@10 {model:#.4g} {pop:#.4g} {model / pop:.4g}×", text)
    assert "Popularity baseline" in text
    # sampled-100 in its own table, labelled
    assert "Sampled-100 metrics (for comparison with papers only)" in text
    assert text.index("Metrics (full ranking)") < text.index("Sampled-100 metrics")
    sampled = summary["model"]["sampled"]["hr@10"]
    assert f"HR@10 {sampled:#.4g}" in text[text.index("Sampled-100 metrics") :]
    assert page.count("data:image/png;base64,") == 2  # metric vs K and the search history
    for row in summary["by_history"]:
        assert f"{row['bucket']} {row['users']}" in text
    cov = summary["model"]["coverage"]["10"]
    assert f"10 {100 * cov:.3g}%" in text
    assert "itemknn <k=50>" in text and "trained <fast>" in text


def test_item_names_are_escaped_in_the_examples(page, evaluated):
    _, summary, _ = evaluated
    assert "<script>" not in page
    first = summary["examples"][0]["top"][0]["id"]
    assert f"&lt;script&gt;alert({first[1:]})&lt;/script&gt; Shoe {first[1:]}" in page
    assert "Examples of recommendations" in text_of(page)
    assert not re.search(r"\bu\d+\b", text_of(page))  # no user ID anywhere (personal data)


def test_names_by_item_code(tmp_path, evaluated):
    split, summary, _ = evaluated
    by_code = [f"Hat {i}" for i in range(summary["items"])]
    page = write_report(tmp_path / "a.html", title="t", summary=summary,
                        protocol=split.description, model_info={}, notes=[],
                        item_names=by_code).read_text()  # fmt: skip
    code = summary["examples"][0]["top"][0]["code"]
    assert f"Hat {code}" in text_of(page)
    assert "Search: the trials" not in text_of(page)  # no trials given, no section


def test_bad_calls(tmp_path, evaluated):
    split, summary, _ = evaluated
    with pytest.raises(UsageError, match="is a folder"):
        write_report(tmp_path, title="t", summary=summary, protocol="", model_info={}, notes=[])
    with pytest.raises(UsageError, match="nobody was scored"):
        write_report(tmp_path / "x.html", title="t", summary={"model": {"full": {}}},
                     protocol="", model_info={}, notes=[])  # fmt: skip
