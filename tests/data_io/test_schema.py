import json

import numpy as np
import pandas as pd
import pytest

from conftest import ADULT, AI4I, BANK, GERMAN
from shipml.data.io import read_table
from shipml.data.schema import Schema, infer_schema
from shipml.errors import SchemaError, TargetError


def kinds(schema):
    return {c.name: c.kind for c in schema.columns}


def test_german_credit_kinds_and_task():
    frame = read_table(GERMAN).frame
    s = infer_schema(frame, "credit_risk")
    assert s.task == "binary"
    assert s.classes == [1, 2]  # 2 = bad, the rarer class, is the positive one
    k = kinds(s)
    assert k["credit_amount"] == "numeric" and k["checking_status"] == "categorical"
    assert len(s.features) == 20


def test_ids_and_failure_flags_on_machine_data():
    s = infer_schema(read_table(AI4I).frame, "Machine_failure")
    k = kinds(s)
    assert k["Product ID"] == "id"
    assert "identifier" in s.column("Product ID").note
    assert k["TWF"] == "boolean" and k["Torque [Nm]"] == "numeric"
    assert s.classes == [0, 1]


def test_yes_no_target_puts_yes_last_and_booleans_detected():
    s = infer_schema(read_table(BANK).frame, "y")
    assert s.classes == ["no", "yes"]
    assert kinds(s)["housing"] == "boolean"


def test_boolean_dataframe_target_keeps_its_values():
    """A pandas bool target (e.g. `df["bad"] = df.amount > x`) trains with classes False/True."""
    frame = read_table(GERMAN).frame
    frame = frame.assign(bad=frame["credit_risk"].astype(str) == "2").drop(columns="credit_risk")
    s = infer_schema(frame, "bad")
    assert s.task == "binary" and s.classes == [False, True]
    labels = s.target_values(frame)
    assert list(labels[:5]) == list(frame["bad"].head(5)) and labels.dtype == object


def test_numbers_stored_as_text_are_parsed():
    frame = read_table(BANK).frame.head(300).copy()
    frame["balance"] = ["$" + f"{float(v):,.2f}" for v in frame["balance"]]
    frame["rate"] = [f"{i % 50}%" for i in range(300)]
    frame["spaced"] = [f"{1000 + 3 * (i % 100):,}".replace(",", " ") for i in range(300)]
    s = infer_schema(frame, "y")
    assert kinds(s)["balance"] == "numeric" and "parsed" in s.column("balance").note
    typed = s.coerce(frame)
    assert typed["balance"].iloc[0] == pytest.approx(float(read_table(BANK).frame["balance"][0]))
    assert typed["rate"].iloc[7] == pytest.approx(0.07)
    assert typed["spaced"].iloc[1] == 1003.0


def test_datetime_text_constant_and_empty_columns():
    frame = read_table(GERMAN).frame.head(200).copy()
    frame["applied"] = pd.date_range("2023-01-01", periods=200, freq="D").strftime("%d/%m/%Y")
    frame["comment"] = [f"customer asked about {p} and the loan amount {i}"
                        for i, p in enumerate(frame["purpose"])]  # fmt: skip
    frame["branch"] = "Berlin"
    frame["empty"] = None
    s = infer_schema(frame, "credit_risk")
    k = kinds(s)
    assert k["applied"] == "datetime" and s.column("applied").date_format == "%d/%m/%Y"
    assert k["comment"] == "text"
    assert k["branch"] == "ignored" and "constant" in s.column("branch").note
    assert k["empty"] == "ignored" and "missing" in s.column("empty").note
    typed = s.coerce(frame)
    assert typed["applied"].iloc[40] == pd.Timestamp("2023-02-10")


def test_task_inference_and_override():
    frame = read_table(ADULT).frame
    assert infer_schema(frame, "age").task == "regression"
    s = infer_schema(frame, "relationship")
    assert s.task == "multiclass" and len(s.classes) == 6
    assert infer_schema(frame, "education_num", task="multiclass").task == "multiclass"
    with pytest.raises(TargetError, match="numeric target"):
        infer_schema(frame, "workclass", task="regression")


def test_missing_target_suggests_the_closest_column():
    frame = read_table(GERMAN).frame
    with pytest.raises(TargetError, match="Did you mean 'credit_risk'") as err:
        infer_schema(frame, "credit_risc")
    assert "checking_status" in str(err.value)  # lists the columns


def test_one_class_and_empty_targets_are_errors():
    frame = read_table(GERMAN).frame
    one = frame[frame["credit_risk"] == "1"]
    with pytest.raises(TargetError, match="single class"):
        infer_schema(one, "credit_risk")
    empty = frame.assign(credit_risk=None)
    with pytest.raises(TargetError, match="all 1000 are missing"):
        infer_schema(empty, "credit_risk")


def test_rows_with_missing_target_are_counted():
    frame = read_table(GERMAN).frame.copy()
    frame.loc[:9, "credit_risk"] = None
    s = infer_schema(frame, "credit_risk")
    assert any("10 rows with a missing target" in n for n in s.notes)


def test_coerce_names_column_row_and_value():
    frame = read_table(GERMAN).frame
    s = infer_schema(frame, "credit_risk")
    bad = frame.head(20).copy()
    bad.loc[16, "age_years"] = "forty"
    with pytest.raises(
        SchemaError, match=r"column 'age_years' expected numeric.*'forty' in row 17"
    ):
        s.coerce(bad)
    with pytest.raises(SchemaError, match="missing 2 column.*'purpose' \\(categorical\\)"):
        s.coerce(frame.drop(columns=["purpose", "age_years"]))


def test_typed_dataframe_input_matches_text_input(german):
    s = infer_schema(read_table(GERMAN).frame, "credit_risk")
    from_text = s.coerce(read_table(GERMAN).frame)
    from_typed = s.coerce(german)  # ints from pandas, not strings
    pd.testing.assert_frame_equal(from_text, from_typed)


def test_schema_json_round_trip():
    s = infer_schema(read_table(AI4I).frame, "Machine_failure")
    again = Schema.from_dict(json.loads(json.dumps(s.to_dict())))
    assert again == s
    assert np.array_equal(again.target_values(read_table(AI4I).frame),
                          s.target_values(read_table(AI4I).frame))  # fmt: skip


def test_blank_cells_in_a_dataframe_are_missing_at_prediction():
    """Telco-style data: pandas.read_csv keeps " " in a numeric column; that is missing, not an
    error, exactly as when shipml reads the file itself."""
    frame = read_table(GERMAN).frame
    s = infer_schema(frame, "credit_risk")
    rows = pd.read_csv(GERMAN).head(4).astype({"credit_amount": object})
    rows.loc[1, "credit_amount"] = " "
    rows.loc[2, "credit_amount"] = "?"
    typed = s.coerce(rows)
    assert typed["credit_amount"].isna().tolist() == [False, True, True, False]
