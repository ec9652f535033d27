"""`shipml train --task recommend`, `shipml recommend`, `shipml similar`, `shipml evaluate` on a
recommender, and their errors (exit 2, one line, no traceback)."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from recommend.small_shop import catalog, later_log, shop_log


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    shop_log().to_csv(folder / "purchases.csv", index=False)
    catalog().to_csv(folder / "catalog.csv", index=False)
    later_log().to_csv(folder / "later.csv", index=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)}).to_csv(
        folder / "table.csv", index=False
    )
    return folder


@pytest.fixture(scope="module")
def registry(files, tmp_path_factory):
    """`shipml train` of the log (a recommender "recs") and of a table (a classifier "churn")."""
    reg = tmp_path_factory.mktemp("cli-registry")
    code, out = _main(["train", files / "purchases.csv", "--task", "recommend", "--user",
                       "customer_id", "--item", "product_id", "--time", "ts", "--items",
                       files / "catalog.csv", "--name", "recs", "--time-budget", "5",
                       "--registry-uri", reg])  # fmt: skip
    assert code == 0, out
    code, _ = _main(["train", files / "table.csv", "--target", "y", "--name", "churn",
                     "--time-budget", "5", "--trials", "1", "--no-report",
                     "--registry-uri", reg])  # fmt: skip
    assert code == 0
    return reg, out


def _main(args) -> tuple[int, str]:
    """`shipml ARGS` in-process outside a test (a module fixture has no capsys)."""
    import contextlib
    import io

    from shipml.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return code, buffer.getvalue()


def cli(capsys, registry, *args):
    reg, _ = registry
    return run_cli([*args, "--registry-uri", reg], capsys)


def test_train_prints_the_summary(registry):
    _, out = registry
    assert "registered recs/1" in out and "160 users, 90 items" in out
    assert "protocol:" in out and "chosen:" in out
    assert "hr@10" in out and "mrr" in out and "popularity" in out
    assert len(table_row(out, "ndcg@10")) == 2  # the model's and popularity's


def table_row(out: str, metric: str) -> list[str]:
    """The values of a metric's row in a printed table."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
        if cells and cells[0] == metric:
            return cells[1:]
    raise AssertionError(f"no {metric} row in {out}")


def test_recommend_for_a_user(capsys, registry):
    code, out, err = cli(capsys, registry, "recommend", "recs", "--user", "u4", "--k", "5",
                         "--json")  # fmt: skip
    assert code == 0, err
    answer = json.loads(out)
    ids = [row["item"] for row in answer["items"]]
    log = shop_log()
    assert answer["model"] == "recs" and answer["version"] == 1 and answer["fallback"] is None
    assert len(ids) == 5 and not set(ids) & set(log.product_id[log.customer_id == "u4"].astype(str))
    code, table, err = cli(capsys, registry, "recommend", "recs", "--user", "u4", "--k", "5")
    assert code == 0 and all(i in table for i in ids) and "recs/1: for user u4" in table


def test_recommend_for_a_basket_lists_unknown_items(capsys, registry):
    code, out, err = cli(capsys, registry, "recommend", "recs", "--items", "100,106,nope-9",
                         "--k", "4", "--exclude", "101,102")  # fmt: skip
    assert code == 0, err
    assert "fallback: session" in out and "not in the catalogue (ignored): nope-9" in out
    code, out, err = cli(capsys, registry, "recommend", "recs", "--items", "100,106",
                         "--exclude", "101,102", "--json")  # fmt: skip
    ids = [row["item"] for row in json.loads(out)["items"]]
    assert len(ids) == 10 and not {"100", "106", "101", "102"} & set(ids)


def test_an_unknown_user_gets_popular_items(capsys, registry):
    code, out, err = cli(capsys, registry, "recommend", "recs", "--user", "nobody", "--json")
    assert code == 0 and json.loads(out)["fallback"] == "popular"


def test_similar(capsys, registry):
    code, out, err = cli(capsys, registry, "similar", "recs", "--item", "103", "--k", "4",
                         "--json")  # fmt: skip
    assert code == 0, err
    ids = [row["item"] for row in json.loads(out)["items"]]
    assert len(ids) == 4 and "103" not in ids


def test_recommend_with_a_filter(capsys, registry):
    code, out, err = cli(capsys, registry, "recommend", "recs", "--user", "u4", "--k", "5",
                         "--filter", "category=garden|kitchen", "--json")  # fmt: skip
    assert code == 0, err
    kinds = catalog().set_index(catalog().product_id.astype(str)).category
    found = {kinds[row["item"]] for row in json.loads(out)["items"]}
    assert found and found <= {"garden", "kitchen"}


def test_filter_values_are_typed():
    from shipml.cli.recommend import parse_filter

    assert parse_filter(["category=shoes|boots", "in_stock=true", "price=9.5"]) == {
        "category": ["shoes", "boots"], "in_stock": True, "price": 9.5}  # fmt: skip


def test_evaluate_on_later_events(capsys, registry, files):
    code, out, err = cli(capsys, registry, "evaluate", "recs", "--data", files / "later.csv",
                         "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    ours, popular = summary["model"]["full"], summary["popularity"]["full"]
    assert 0 <= ours["ndcg@10"] <= 1 and 0 <= popular["ndcg@10"] <= 1
    assert summary["users"] > 100  # the later events of shoppers the model knows
    code, out, err = cli(capsys, registry, "evaluate", "recs", "--data", files / "later.csv")
    assert code == 0, err
    assert table_row(out, "ndcg@10") == [f"{ours['ndcg@10']:.4g}", f"{popular['ndcg@10']:.4g}"]
    assert "popularity" in out and "coverage@10" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["recommend", "recs", "--user", "u4", "--k", "0"], "--k"),
        (["recommend", "recs", "--items", "100,,101"], "--items takes comma-separated"),
        (["recommend", "recs", "--filter", "category"], "--filter takes COLUMN=VALUE"),
        (["recommend", "ghost", "--user", "u4"], "ghost"),
        (["recommend", "churn", "--user", "u4"], "shipml predict churn"),
        (["similar", "recs", "--item", "no-such-item"], "no-such-item"),
        (["predict", "recs", "x.csv"], "shipml recommend recs"),
        (["explain", "recs", "--data", "x.csv"], "is a recommender"),
    ],
)
def test_errors_exit_2_with_one_line(capsys, registry, args, message):
    code, out, err = cli(capsys, registry, *args)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "recommend", "--target", "y"], "--target is for tables"),
        (["--user", "customer_id", "--item", "product_id"], "--user, --item are for logs"),
        ([], "--target is required"),
    ],
)
def test_train_option_errors(capsys, files, tmp_path, args, message):
    code, _, err = run_cli(["train", files / "purchases.csv", *args, "--registry-uri", tmp_path],
                           capsys)  # fmt: skip
    assert code == 2 and message in err and "Traceback" not in err
