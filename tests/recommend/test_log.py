"""Reading a log (recommend/log.py): which column is which, what an event weighs, the time,
the IDs, repeated rows, the item table, every bad input — and the committed shop log."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from conftest import SHOP_EVENTS, SHOP_ITEMS
from shipml.errors import DataError, UsageError
from shipml.recommend.log import read_log


def _log(n_users=6, n_items=5, per_user=4, seed=0, **extra) -> pd.DataFrame:
    """A small log with taste: user u likes items u % n_items and the next one."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for k in range(per_user):
            i = (u + (k % 2)) % n_items if rng.random() < 0.8 else rng.integers(n_items)
            rows.append({"u": f"u{u}", "i": f"i{i}", "day": int(rng.integers(1, 28))})
    frame = pd.DataFrame(rows)
    frame["when"] = pd.to_datetime("2024-03-01") + pd.to_timedelta(
        frame["day"] * 86400 + np.arange(len(frame)), unit="s"
    )
    frame = frame.drop(columns="day")
    for name, values in extra.items():
        frame[name] = values(len(frame)) if callable(values) else values
    return frame


def _epoch(when: pd.Series) -> pd.Series:
    return (when - pd.Timestamp(0)).dt.total_seconds()


# -- column guessing ----------------------------------------------------------------------------


def test_columns_guessed_by_header_names_are_said_in_the_notes():
    log = _log().rename(columns={"u": "userId", "i": "movieId", "when": "timestamp"})
    log["rating"] = np.tile([5, 3, 4, 1], len(log) // 4)
    inter, spec = read_log(log)
    assert (spec.user, spec.item, spec.time, spec.weight) == ("userId", "movieId", "timestamp",
                                                              "rating")  # fmt: skip
    assert "user column guessed: userId" in spec.notes
    assert "item column guessed: movieId" in spec.notes
    assert "time column guessed: timestamp" in spec.notes
    assert inter.n_users == 6 and inter.n_items == 5


@pytest.mark.parametrize(
    ("user", "item", "time"),
    [("customer_id", "product_id", "created_at"), ("client_id", "sku", "event_time"),
     ("visitor_id", "article_id", "datetime"), ("CustomerID", "StockCode", "InvoiceDate"),
     ("session", "item", "date"), ("CustomerNo", "product", "ts")],
)  # fmt: skip
def test_common_header_names_are_recognised(user, item, time):
    log = _log().rename(columns={"u": user, "i": item, "when": time})
    log.insert(0, "store", "berlin")  # a column that is none of them
    _, spec = read_log(log)
    assert (spec.user, spec.item, spec.time) == (user, item, time)


def test_the_better_name_wins_and_a_product_name_is_not_the_product_id():
    log = _log().rename(columns={"u": "session_id", "i": "product_id"})
    log["user_id"] = log["session_id"].str.upper()
    log["product_name"] = "Mug " + log["product_id"]
    log = log[["session_id", "product_name", "user_id", "product_id", "when"]]
    _, spec = read_log(log)
    assert spec.user == "user_id"  # listed before session_id, though it comes later in the file
    assert spec.item == "product_id"


def test_columns_guessed_from_their_values_when_the_headers_say_nothing():
    log = _log().rename(columns={"u": "a", "i": "b", "when": "c"})
    log["c"] = log["c"].dt.strftime("%Y-%m-%d %H:%M:%S")
    log["d"] = np.where(np.arange(len(log)) % 3 == 0, "purchase", "view")
    inter, spec = read_log(log)
    assert (spec.user, spec.item, spec.time, spec.event) == ("a", "b", "c", "d")
    assert "time column guessed from its values: c" in spec.notes
    assert "event column guessed from its values: d" in spec.notes
    assert any(n.startswith("user column guessed from its values: a") for n in spec.notes)
    assert inter.weight.max() == 4.0  # a purchase


@pytest.mark.parametrize("scale", [1, 1000])  # epoch seconds, milliseconds
def test_an_epoch_time_column_is_guessed_from_its_values(scale):
    log = _log()
    seconds = _epoch(log["when"]).astype("int64")
    log["x"] = seconds * scale
    log = log.drop(columns="when")
    inter, spec = read_log(log, user="u", item="i")
    assert spec.time == "x"
    assert np.allclose(np.sort(inter.time), np.sort(seconds.to_numpy(float)))


def test_named_columns_are_kept_even_when_others_look_better():
    log = _log().rename(columns={"u": "session_id"})
    log["user_id"] = "same-user"
    inter, spec = read_log(log, user="session_id")
    assert spec.user == "session_id" and inter.n_users == 6
    assert not any(n.startswith("user column") for n in spec.notes)


def test_a_missing_named_column_is_an_error_suggesting_the_closest_names():
    log = _log().rename(columns={"u": "customer_id"})
    with pytest.raises(DataError) as err:
        read_log(log, user="custmer_id", item="i")
    assert "user column 'custmer_id' is not in the log" in str(err.value)
    assert "Did you mean 'customer_id'?" in str(err.value)
    with pytest.raises(DataError, match="time column 'timestmp'.*Did you mean 'timestamp'"):
        read_log(log.rename(columns={"when": "timestamp"}), time="timestmp")


def test_one_column_named_for_two_roles_is_an_error():
    with pytest.raises(UsageError, match="column 'u' is named for two roles \\(user, item\\)"):
        read_log(_log(), user="u", item="u")


def test_a_log_whose_item_column_cannot_be_guessed_says_how_to_name_it():
    log = pd.DataFrame({"customer": ["a", "b", "c", "a"], "note": ["x y z w"] * 4})
    with pytest.raises(DataError, match="cannot tell which column of the log holds the items.*"
                                        r"item=\.\.\..*customer, note"):  # fmt: skip
        read_log(log)


# -- weights: ratings, amounts, event types -----------------------------------------------------


def test_explicit_ratings_become_a_confidence_that_grows_with_the_rating():
    log = _log(rating=lambda n: np.tile([1, 2, 3, 4, 5], n // 5 + 1)[:n])
    inter, spec = read_log(log, user="u", item="i", time="when")
    assert spec.weight == "rating" and spec.weight_kind == "rating"
    rating = log["rating"].to_numpy()[np.argsort(log["when"].to_numpy(), kind="stable")]
    for low, high in [(1, 2), (2, 3), (3, 4), (4, 5)]:
        assert inter.weight[rating == low].max() < inter.weight[rating == high].min()
    assert inter.n_events == len(log) and inter.weight.min() > 0  # a rating of 1 stays an event
    assert any("explicit ratings" in n and "scale 1-5" in n for n in spec.notes)


@pytest.mark.parametrize(("values", "scale"), [([0.5, 1.5, 3.0, 4.5, 5.0], "0.5-5"),
                                               ([1, 4, 7, 10, 2], "1-10")])  # fmt: skip
def test_ratings_are_told_by_their_values_when_the_name_says_nothing(values, scale):
    log = _log(w=lambda n: np.tile(values, n // 5 + 1)[:n])
    _, spec = read_log(log, user="u", item="i", weight="w")
    assert spec.weight_kind == "rating"
    assert any("told by its values" in n and f"scale {scale}" in n for n in spec.notes)


def test_amounts_are_log_scaled_and_a_quantity_is_not_a_rating():
    log = _log(n_users=4, per_user=3, qty=[1, 2, 4, 1, 3, 5, 1, 1, 2, 1, 4, 2])
    inter, spec = read_log(log, user="u", item="i", time="when")
    assert spec.weight == "qty" and spec.weight_kind == "amount"
    order = np.argsort(log["when"].to_numpy(), kind="stable")
    qty = log["qty"].to_numpy()[order]
    median = np.median(log["qty"])
    assert np.allclose(inter.weight, np.log2(1 + qty / median), atol=1e-6)
    assert inter.weight[qty == median].tolist() == [1.0] * int((qty == median).sum())


def test_returns_are_left_out_and_missing_amounts_count_as_one_event():
    log = _log(n_users=4, per_user=3, price=[10, 20, None, -5, 10, 40, 0, 10, 10, 10, 20, 10])
    inter, spec = read_log(log, user="u", item="i")
    assert inter.n_events == len(log) - 2
    assert any("2 rows with a weight (price) of 0 or less were left out" in n and "row 4" in n
               for n in spec.notes)  # fmt: skip
    assert any("1 rows without a weight (price)" in n for n in spec.notes)


def test_a_weight_that_is_not_a_number_names_the_column_and_the_row():
    log = _log(quantity=lambda n: ["2"] * (n - 1) + ["lots"])
    with pytest.raises(DataError, match=rf"weight column 'quantity' expected numbers, got "
                                        rf"'lots' in row {len(log)}"):  # fmt: skip
        read_log(log, user="u", item="i")


def test_event_types_weigh_by_default_and_their_spellings_are_understood():
    kinds = ["view", "Click", "AddToCart", "add to cart", "wishlist", "transaction", "Purchase"]
    log = _log(n_users=7, per_user=1, action=kinds)
    inter, spec = read_log(log, user="u", item="i")
    by_user = dict(zip(inter.users[inter.user], inter.weight))
    got = [by_user[f"u{k}"] for k in range(7)]
    assert got == [1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0]
    assert spec.event == "action" and spec.events["transaction"] == 4.0


def test_unknown_event_types_are_an_error_unless_given_a_weight():
    log = _log(n_users=4, per_user=3, event=["view", "purchase", "refund"] * 4)
    with pytest.raises(DataError) as err:
        read_log(log, user="u", item="i")
    message = str(err.value)
    assert "event column 'event'" in message and "'refund' (4)" in message
    assert "purchase = 4" in message and "events=" in message
    inter, spec = read_log(log, user="u", item="i", events={"refund": 0, "view": 0.5})
    assert inter.n_events == 8  # refunds weighted 0: left out
    assert sorted(set(inter.weight.tolist())) == [0.5, 4.0]
    assert "4 events weighted 0 by events= were left out" in spec.notes


def test_event_weights_must_be_numbers_and_need_an_event_column():
    log = _log(event="view")
    with pytest.raises(UsageError, match="weight of 'view' must be a number >= 0"):
        read_log(log, user="u", item="i", events={"view": -1})
    with pytest.raises(UsageError, match="no event column"):
        read_log(log.drop(columns="event"), user="u", item="i", events={"view": 1})


def test_an_event_type_and_a_weight_multiply():
    log = _log(n_users=2, per_user=2, event=["view", "purchase", "purchase", "view"],
               quantity=[None, 3, 1, None])  # fmt: skip
    inter, spec = read_log(log, user="u", item="i")
    by_row = dict(zip(zip(inter.users[inter.user], inter.time), inter.weight))
    when = _epoch(log["when"])
    weights = [by_row[(u, t)] for u, t in zip(log["u"], when)]
    assert np.allclose(weights, [1.0, 4 * np.log2(1 + 3 / 2), 4 * np.log2(1 + 1 / 2), 1.0])
    assert any("x the confidence of its quantity" in n for n in spec.notes)


def test_repeated_events_are_kept_and_summed_by_the_matrix():
    log = pd.DataFrame({"user": ["a", "a", "a", "b", "b"], "item": ["x", "x", "y", "y", "x"],
                        "time": [1, 2, 3, 4, 5]})  # fmt: skip
    inter, _ = read_log(log)
    m = inter.matrix().toarray()
    a, x = list(inter.users).index("a"), list(inter.items).index("x")
    assert inter.n_events == 5 and m[a, x] == 2.0


# -- time -------------------------------------------------------------------------------------


def test_events_are_sorted_by_time_with_time_zones_converted_to_utc():
    log = pd.DataFrame({"user": ["a", "b", "a", "b"], "item": ["x", "y", "y", "x"],
                        "ts": ["2024-01-01T12:00:00+02:00", "2024-01-01T09:30:00Z",
                               "2024-01-01T10:15:00Z", "2024-01-01T08:00:00-05:00"]})  # fmt: skip
    inter, spec = read_log(log)
    assert list(zip(inter.users[inter.user], inter.items[inter.item])) == [
        ("b", "y"), ("a", "x"), ("a", "y"), ("b", "x")]  # fmt: skip
    assert inter.time[1] == pd.Timestamp("2024-01-01T10:00:00Z").timestamp()
    assert "time column 'ts' read as dates" in spec.notes


@pytest.mark.parametrize(("scale", "unit"), [(1, "seconds"), (1000, "milliseconds")])
def test_epoch_numbers_are_told_apart_by_their_magnitude(scale, unit):
    base = pd.Timestamp("2024-05-01T00:00:00Z").timestamp()
    log = pd.DataFrame({"user": list("aabb"), "item": list("xyxy"),
                        "time": [(base + k * 60) * scale for k in range(4)]})  # fmt: skip
    inter, spec = read_log(log)
    assert np.allclose(inter.time, base + 60 * np.arange(4))
    assert any(f"epoch {unit}" in n for n in spec.notes)


def test_a_few_unreadable_times_are_dropped_with_a_count():
    log = _log(n_users=6, per_user=4)
    log["when"] = log["when"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    log.loc[5, "when"] = "sometime"
    log.loc[9, "when"] = None
    inter, spec = read_log(log, user="u", item="i")
    assert inter.n_events == len(log) - 2
    assert (
        "2 rows with a missing or unreadable time (when) were left out (e.g. row 6)" in spec.notes
    )


def test_times_that_cannot_be_read_are_an_error_naming_the_column_and_a_row():
    log = _log(n_users=3, per_user=2)
    log["when"] = ["soon", "later", "2024-01-01", "never", "tomorrow", "today"]
    with pytest.raises(DataError, match=r"time column 'when' cannot be read .*5 of 6 .*'soon' in "
                                        r"row 1"):  # fmt: skip
        read_log(log, user="u", item="i")
    log["when"] = ["bad"] * 6
    with pytest.raises(DataError, match=r"time column 'when'.*all 6.*'bad' in row 1"):
        read_log(log, user="u", item="i", time="when")
    log["when"] = None
    with pytest.raises(DataError, match="time column 'when' cannot order the events: all 6 are "
                                        "missing"):  # fmt: skip
        read_log(log, user="u", item="i", time="when")


def test_without_a_time_column_the_file_order_is_the_time_order():
    log = pd.DataFrame({"user": list("abab"), "item": list("xyyx")})
    inter, spec = read_log(log)
    assert inter.time is None and spec.time is None
    assert [inter.items[c] for c in inter.item] == list("xyyx")
    assert "no time column: the file's order is taken as the time order" in spec.notes


# -- IDs --------------------------------------------------------------------------------------


def test_whole_float_ids_become_integers_and_missing_ids_are_dropped():
    log = _log(n_users=4, per_user=3)
    log["i"] = log["i"].str[1:].astype(float)
    log.loc[2, "i"] = np.nan  # pandas reads an int column with a gap as floats: 17.0
    inter, spec = read_log(log, user="u", item="i")
    assert inter.n_events == len(log) - 1
    assert all("." not in i for i in inter.items) and "1" in set(inter.items)
    assert any("whole numbers written as floats" in n for n in spec.notes)
    assert "1 rows without a item (i) were left out (e.g. row 3)" in spec.notes


def test_float_ids_read_from_a_file_become_integers(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item\n1.0,17.0\n2.0,17.0\n1.0,4.0\n2.0,\n")
    inter, spec = read_log(path)
    assert sorted(inter.items) == ["17", "4"] and sorted(inter.users) == ["1", "2"]
    assert spec.source == str(path) and len(spec.sha256) == 64


def test_ids_with_decimals_are_an_error_naming_the_column_and_a_row():
    log = pd.DataFrame({"user": ["a", "b", "a"], "item": [17.0, 17.5, 4.0]})
    with pytest.raises(DataError, match=r"IDs in column 'item' look like decimal numbers "
                                        r"\(17\.5 in row 2\)"):  # fmt: skip
        read_log(log)


def test_a_user_column_without_values_is_an_error():
    log = pd.DataFrame({"user": [None, None, None], "item": ["x", "y", "z"], "n": [1, 2, 3]})
    with pytest.raises(DataError, match="user column 'user' has no values"):
        read_log(log, user="user", item="item")


@pytest.mark.parametrize(
    ("users", "items", "said"),
    [(["a", "a", "a"], ["x", "y", "z"], "3 events from 1 user on 3 items"),
     (["a", "b", "c"], ["x", "x", "x"], "3 events from 3 users on 1 item")],
)  # fmt: skip
def test_a_log_with_one_user_or_one_item_is_an_error(users, items, said):
    with pytest.raises(DataError, match=f"at least 2 users and 2 items; the log has {said}"):
        read_log(pd.DataFrame({"user": users, "item": items}))


def test_one_user_left_after_dropping_rows_is_an_error():
    log = pd.DataFrame({"user": ["a", None, "a"], "item": ["x", "y", "z"]})
    with pytest.raises(DataError, match="2 events from 1 user on 2 items"):
        read_log(log)


# -- repeated (user, item, time) -----------------------------------------------------------------


def test_two_ratings_for_the_same_user_item_and_time_are_an_error_naming_the_rows():
    log = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["x", "x", "y", "x"],
                        "time": [100, 100, 100, 200], "rating": [4, 2, 5, 3]})  # fmt: skip
    with pytest.raises(DataError) as err:
        read_log(log)
    message = str(err.value)
    assert "more than one rating for the same user, item and time" in message
    assert "user 'a', item 'x'" in message and "row 1 (4), row 2 (2)" in message


def test_identical_repeated_rows_are_merged_when_a_weight_is_given():
    log = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["x", "x", "y", "x"],
                        "time": [100, 100, 100, 200], "rating": [4, 4, 5, 3]})  # fmt: skip
    inter, spec = read_log(log)
    assert inter.n_events == 3
    assert any(n.startswith("1 repeated rows (same user, item, time and rating) were merged")
               for n in spec.notes)  # fmt: skip
    inter, _ = read_log(log.drop(columns="rating"))
    assert inter.n_events == 4  # no weight: a repeated event, kept


def test_a_view_and_a_purchase_at_the_same_second_are_two_events():
    log = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "x", "y"], "time": [5, 5, 6],
                        "event": ["view", "purchase", "view"], "qty": [1, 2, 1]})  # fmt: skip
    inter, _ = read_log(log)
    assert inter.n_events == 3


# -- the item table ---------------------------------------------------------------------------


def _catalogue():
    return pd.DataFrame({"product_id": [1.0, 2.0, 3.0, 4.0, 9.0],
                         "name": ["Mug", "Tea", "Pot", "Cup", "Spoon"],
                         "category": ["kitchen", "tea", "tea", "kitchen", "kitchen"],
                         "price": ["4.50", "7", "20", "3", "1.25"],
                         "in_stock": ["true", "false", "yes", "no", "true"],
                         "description": ["a large mug", "green tea", "a teapot", "a cup",
                                         "a teaspoon"]})  # fmt: skip


def test_the_item_table_is_joined_on_normalized_ids_in_item_code_order():
    log = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"],
                        "product_id": [1, 2, 2, 3, 5]})  # fmt: skip
    inter, spec = read_log(log, items=_catalogue())
    assert list(inter.items) == ["1", "2", "3", "5", "4", "9"]  # the table's own items last
    table = inter.item_table
    assert list(table.index) == list(inter.items)
    assert table.loc["2", "name"] == "Tea" and table.loc["9", "name"] == "Spoon"
    assert pd.isna(table.loc["5", "name"])  # in the log, not in the table
    assert table["price"].dtype == float and table.loc["1", "price"] == 4.5
    assert table.loc[["1", "2", "3", "4"], "in_stock"].tolist() == [True, False, True, False]
    assert inter.matrix().shape == (3, 6) and inter.matrix()[:, 4:].nnz == 0
    assert spec.items == {"id": "product_id", "name": "name", "category": "category",
                          "price": "price", "text": "description"}  # fmt: skip
    assert table.attrs["roles"]["text"] == "description"
    assert "2 items of the item table have no events: kept in the catalogue (recommended from " \
           "their metadata)" in spec.notes  # fmt: skip
    assert (
        "1 items of the log are not in the item table (no name or metadata for them)" in spec.notes
    )
    assert spec.counts["items_without_events"] == 2 and spec.counts["catalogue"] == 6


def test_the_item_tables_id_column_is_guessed_when_it_has_another_name(tmp_path):
    path = tmp_path / "catalog.csv"
    _catalogue().rename(columns={"product_id": "id"}).to_csv(path, index=False)
    log = pd.DataFrame({"user": list("aabb"), "sku": ["1", "2", "3", "1"]})
    inter, spec = read_log(log, items=path)
    assert "item table ID column guessed: id" in spec.notes
    assert inter.item_table.loc["3", "name"] == "Pot"
    assert inter.item_table["in_stock"].dtype == bool


def test_repeated_ids_in_the_item_table_are_an_error_naming_them():
    table = _catalogue()
    table.loc[3, "product_id"] = 2.0
    log = pd.DataFrame({"user": list("aabb"), "product_id": [1, 2, 3, 1]})
    with pytest.raises(
        DataError, match=r"item IDs repeat in column 'product_id': '2' in rows 2, 4"
    ):
        read_log(log, items=table)


def test_an_item_table_without_the_id_column_suggests_one():
    table = _catalogue().rename(columns={"product_id": "prod"})
    log = pd.DataFrame({"user": list("aabb"), "product_id": [1, 2, 3, 1]})
    with pytest.raises(DataError, match=r"item column 'product_id' is not in the item table.*"
                                        r"Columns are: prod, name"):  # fmt: skip
        read_log(log, items=table)


def test_an_item_table_that_shares_no_id_with_the_log_is_an_error():
    table = _catalogue()
    table["product_id"] = ["P1", "P2", "P3", "P4", "P9"]
    log = pd.DataFrame({"user": list("aabb"), "product_id": [1, 2, 3, 1]})
    with pytest.raises(
        DataError,
        match=r"item table's IDs \(product_id: 'P1', 'P2', 'P3', "
        r"\.\.\.\) match none of the log's \(product_id: '1'",
    ):
        read_log(log, items=table)


def test_time_weight_or_event_false_means_the_log_has_none():
    log = _log(rating=3, event="view")
    inter, spec = read_log(log, time=False, weight=False, event=False)
    assert (spec.time, spec.weight, spec.event) == (None, None, None)
    assert inter.time is None and set(inter.weight.tolist()) == {1.0}
    with pytest.raises(UsageError, match="a log needs a user column"):
        read_log(log, user=False)


# -- the committed shop log ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop():
    return read_log(SHOP_EVENTS, items=SHOP_ITEMS)


def test_the_shop_log_reads_with_every_column_guessed(shop):
    inter, spec = shop
    assert (spec.user, spec.item, spec.time, spec.event, spec.weight) == (
        "customer_id", "product_id", "ts", "event", "quantity")  # fmt: skip
    assert spec.events == {"cart": 2.0, "purchase": 4.0, "view": 1.0}
    assert spec.weight_kind == "amount"
    assert 250 <= inter.n_users <= 300 and inter.n_items == 150
    assert 5000 <= inter.n_events <= 7000
    assert np.all(np.diff(inter.time) >= 0)
    assert inter.time.max() - inter.time.min() > 80 * 86400
    assert inter.item_table["in_stock"].dtype == bool
    assert spec.counts["items_without_metadata"] == 0
    json.dumps(spec.to_dict())  # lineage is JSON


def test_the_shop_log_has_the_structure_a_recommender_learns(shop):
    inter, _ = shop
    cats = inter.item_table["category"].to_numpy()[inter.item]
    per_user = pd.crosstab(inter.user, cats)
    top2 = np.sort(per_user.to_numpy(), axis=1)[:, -2:].sum(1) / per_user.sum(axis=1).to_numpy()
    assert top2.mean() > 0.6  # favourite categories (8 categories: 0.25 without taste)
    counts = np.sort(np.bincount(inter.item, minlength=inter.n_items))[::-1]
    assert counts[:15].sum() > 0.25 * counts.sum()  # popularity skew: 10 % of the items
    events = np.bincount(inter.user, minlength=inter.n_users)
    assert 5 <= (events <= 2).sum() <= 30  # a few users with 1-2 events
    seqs = inter.sequences()
    names = inter.item_table["name"].to_numpy()
    after = [names[s[k + 1]] for s in seqs for k in range(len(s) - 1)
             if "Grinder" in names[s[k]] and "Grinder" not in names[s[k + 1]]]  # fmt: skip
    beans = np.mean(["Espresso Beans" in a for a in after])
    share = np.mean(["Espresso Beans" in n for n in names[inter.item]])
    assert beans > 3 * share  # "bought together"
    first_seen = pd.Series(inter.time).groupby(inter.item).min()
    assert (first_seen > inter.time.max() - 30 * 86400).sum() >= 8  # new items late in the log


def test_items_seen_together_predict_a_users_next_item_better_than_popularity(shop):
    inter, _ = shop
    seen = (inter.matrix().toarray() > 0).astype(float)
    together = seen.T @ seen
    hits = {"popular": 0, "together": 0}
    tried = 0
    for u, seq in enumerate(inter.sequences()):
        past = np.unique(seq[:-1])
        if len(seq) < 3 or seq[-1] in past:
            continue
        tried += 1
        before = np.zeros(inter.n_items)
        before[past] = 1.0  # what the user had before the last item: the last one held out
        co = together - np.outer(seen[u], seen[u]) + np.outer(before, before)
        pop = np.diag(co).copy()
        np.fill_diagonal(co, 0.0)
        scores = {"popular": pop, "together": (co / np.sqrt(np.outer(pop, pop) + 1e-9))[past]
                  .sum(0)}  # fmt: skip
        for name, s in scores.items():
            s[past] = -np.inf
            hits[name] += seq[-1] in np.argsort(-s)[:10]
    assert tried > 100
    assert hits["together"] > 1.2 * hits["popular"] > 0, hits  # 51 vs 36 of 143 users today


def test_the_shop_log_is_what_its_generator_writes(tmp_path):
    path = SHOP_EVENTS.parent / "make_shop_log.py"
    spec = importlib.util.spec_from_file_location("make_shop_log", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.HERE = tmp_path
    module.main()
    assert (tmp_path / "events.csv").read_bytes() == SHOP_EVENTS.read_bytes()
    assert (tmp_path / "items.csv").read_bytes() == SHOP_ITEMS.read_bytes()
