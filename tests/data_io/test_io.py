import gzip

import pandas as pd
import pytest

from conftest import ADULT, AI4I, BANK, GERMAN
from shipml.data.io import read_table
from shipml.errors import DataError


def test_sniffs_semicolons_and_quotes():
    t = read_table(BANK)
    assert t.frame.shape == (2000, 17)
    assert t.frame.columns[0] == "age" and t.frame["job"].iloc[0] == "management"


def test_strips_utf8_bom_from_first_column():
    frame = read_table(AI4I).frame
    assert frame.columns[0] == "UDI"


def test_question_marks_are_missing_values():
    frame = read_table(ADULT).frame
    assert frame["workclass"].isna().sum() > 0
    assert not (frame["workclass"] == "?").any()


def test_all_cells_kept_as_text_so_prediction_parses_like_training():
    frame = read_table(GERMAN).frame
    assert frame["credit_amount"].iloc[0] == "1169"


def test_same_content_same_hash_across_formats(tmp_path, german):
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(GERMAN.read_bytes()))
    assert read_table(gz).frame.equals(read_table(GERMAN).frame)
    tsv = tmp_path / "g.tsv"
    german.to_csv(tsv, sep="\t", index=False)
    assert read_table(tsv).frame.shape == (1000, 21)


@pytest.mark.parametrize("kind", ["parquet", "xlsx", "jsonl", "json"])
def test_other_formats(tmp_path, german, kind):
    path = tmp_path / f"g.{kind}"
    head = german.head(50)
    if kind == "parquet":
        head.to_parquet(path)
    elif kind == "xlsx":
        head.to_excel(path, index=False)
    elif kind == "jsonl":
        head.to_json(path, orient="records", lines=True)
    else:
        head.to_json(path, orient="records")
    frame = read_table(path).frame
    assert frame.shape == (50, 21)
    assert str(frame["checking_status"].iloc[0]) == "A11"


def test_windows_encoding_and_pipe_delimiter(tmp_path):
    path = tmp_path / "cp.csv"
    path.write_bytes("name|city|amount\nJosé|Zürich|1\nAnaïs|Genève|2\n".encode("cp1252"))
    frame = read_table(path).frame
    assert list(frame.columns) == ["name", "city", "amount"]
    assert frame["city"].tolist() == ["Zürich", "Genève"]


def test_dataframe_input_is_hashed_by_content(german):
    a, b = read_table(german), read_table(german.copy())
    assert a.sha256 == b.sha256
    assert read_table(german.head(10)).sha256 != a.sha256


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is empty"),
        (b"a,b,c\n", "no data rows"),
        (b"\x00\x01\x02binary\x00", "binary file"),
    ],
)
def test_unreadable_files_say_why(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_saved_pandas_index_column_is_dropped(tmp_path, german):
    path = tmp_path / "indexed.csv"
    german.head(30).to_csv(path)  # writes an unnamed 0..n-1 first column
    assert list(read_table(path).frame.columns) == list(german.columns)


def test_duplicate_column_names_rejected(tmp_path):
    path = tmp_path / "dupe.csv"
    pd.DataFrame([[1, 2]], columns=["a", "b"]).to_csv(path, index=False)
    path.write_text("a,a\n1,2\n")
    with pytest.raises(DataError, match="repeat"):
        read_table(path)
