"""Read any table a user has into a DataFrame of strings or typed columns, with a content hash.

CSV-like files are read with every column as text: the Schema, not pandas, decides kinds, so the
same value parses the same way at training and at prediction time (a one-row file included).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shipml.data.cells import is_plain_number
from shipml.data.inflate import inflate, is_gzip
from shipml.echo import echo
from shipml.errors import DataError, MissingDependency

__all__ = ["Table", "read_table", "read_csv_bytes", "NA_VALUES"]

# pandas' defaults plus the "?" UCI data uses; "" is always missing.
NA_VALUES = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
    "?",
]
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"


@dataclass(frozen=True)
class Table:
    """A table as read, with where it came from and a sha256 of its content (lineage)."""

    frame: pd.DataFrame
    source: str
    sha256: str


def read_table(source: str | Path | pd.DataFrame, *, sheet: str | int | None = None) -> Table:
    """Read a CSV/TSV (delimiter and encoding sniffed, .gz allowed), Parquet, Excel, JSON lines
    file, or take a DataFrame as it is."""
    if isinstance(source, pd.DataFrame):
        return _from_frame(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a folder; give a table file (CSV, Parquet, Excel, JSON lines)")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if not raw.strip():
        raise DataError(f"{path} is empty")
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    try:
        frame = _read_by_kind(path, raw, kind, sheet)
    except (DataError, MissingDependency):
        raise
    except Exception as exc:  # pandas raises many types; the user needs one message
        raise DataError(f"cannot read {path}: {exc}") from exc
    frame = _clean_columns(frame, str(path))
    if frame.shape[0] == 0:
        raise DataError(f"{path} has a header but no data rows")
    return Table(frame=frame, source=str(path), sha256=digest)


def read_csv_bytes(
    raw: bytes, where: str = "the CSV body", *, max_bytes: int | None = None
) -> pd.DataFrame:
    r"""A delimited table sent as bytes (an upload), read exactly like a CSV file.

    Gzip data is inflated within `max_bytes` and the ratio cap of data/inflate.py (an upload
    is untrusted: InflateLimit, a 413 on the server, when it would pass them).

    >>> read_csv_bytes(b"age;plan\n25;basic\n41;pro\n")  # the delimiter is sniffed
       age   plan
    0   25  basic
    1   41    pro
    >>> read_csv_bytes(b"age,plan\n", where="the upload")
    Traceback (most recent call last):
    shipml.errors.DataError: the upload has a header but no data rows
    """
    if not raw.strip():
        raise DataError(f"{where} is empty")
    if is_gzip(raw):
        raw = inflate(raw, where, limit=max_bytes)
    try:
        frame = _read_delimited(raw, Path(where), tab=False)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read {where}: {exc}") from exc
    frame = _clean_columns(frame, where)
    if frame.shape[0] == 0:
        raise DataError(f"{where} has a header but no data rows")
    return frame


def _read_by_kind(path: Path, raw: bytes, kind: str, sheet: str | int | None) -> pd.DataFrame:
    if kind == ".parquet" or kind == ".pq":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise MissingDependency(
                'reading Parquet needs pyarrow: pip install "shipml[parquet]"'
            ) from exc
        return pd.read_parquet(path)
    if kind in (".xlsx", ".xlsm", ".xls"):
        try:
            import openpyxl  # noqa: F401
        except ImportError as exc:
            raise MissingDependency(
                'reading Excel needs openpyxl: pip install "shipml[excel]"'
            ) from exc
        return pd.read_excel(path, sheet_name=sheet or 0, dtype=str, na_values=NA_VALUES)
    if kind in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True, dtype=False)
    if kind == ".json":
        text = _decompress(raw, path).decode("utf-8-sig").lstrip()
        return pd.read_json(io.StringIO(text), lines=not text.startswith("["), dtype=False)
    return _read_delimited(_decompress(raw, path), path, tab=kind in (".tsv", ".tab"))


def _decompress(raw: bytes, path: Path) -> bytes:
    """A local .gz file inflated: the user's own file, so no size or ratio cap."""
    if not is_gzip(raw):
        return raw
    try:
        return inflate(raw, str(path), limit=None, ratio=None)
    except DataError as exc:
        raise DataError(f"cannot read {path}: broken gzip file ({exc})") from exc


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    if b"\x00" in raw[:_SNIFF_BYTES] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"cannot read {path}: it looks like a binary file, not a text table")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        # cp1252 is what spreadsheets on Windows write; latin-1 accepts any byte.
        try:
            return raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            return raw.decode("latin-1"), "latin-1"


def _read_delimited(raw: bytes, path: Path, *, tab: bool) -> pd.DataFrame:
    text, _encoding = _decode(raw, path)
    sample = text[:_SNIFF_BYTES]
    delimiter = "\t" if tab else _sniff_delimiter(sample)
    header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:  # pandas would silently rename them "a.1"
        raise DataError(_repeated_names(path, names, dupes))
    return pd.read_csv(
        io.StringIO(text),
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        na_values=NA_VALUES,
        skipinitialspace=True,
        skip_blank_lines=True,
    )


def _repeated_names(where, names: list[str], dupes: list[str]) -> str:
    """Repeated column names; when numbers repeat, the likely cause: there is no header row."""
    shown = ", ".join(echo(n, 60) for n in dupes[:10])
    shown += f" and {len(dupes) - 10} more" if len(dupes) > 10 else ""
    if any(is_plain_number(n) for n in dupes):
        first = ", ".join(echo(n, 40) for n in names[:6]) + (", ..." if len(names) > 6 else "")
        return (
            f"{where} seems to have no header row: its first line looks like data ({first}; "
            f"{shown} repeat); add a first line with the column names"
        )
    return f"{where}: column names repeat: {shown}"


def _sniff_delimiter(sample: str) -> str:
    lines = [ln for ln in sample.splitlines()[:50] if ln.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of the sample may be cut in the middle
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on quoted fields with embedded delimiters: count per line instead.
        counts = {d: min(ln.count(d) for ln in lines) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > 0 else ","


def _clean_columns(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    dupes = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if dupes:
        raise DataError(_repeated_names(where, list(frame.columns), dupes))
    unnamed = [c for c in frame.columns if c.startswith("Unnamed: ")]
    # An unnamed first column full of 0..n-1 is a saved pandas index, not data.
    if unnamed and frame[unnamed[0]].notna().all():
        frame = frame.drop(columns=unnamed[0]) if _is_row_index(frame[unnamed[0]]) else frame
    for col in frame.columns:
        if frame[col].dtype == object or str(frame[col].dtype) in ("str", "string"):
            values = frame[col]
            stripped = values.str.strip()
            if values.dtype == object:  # numbers mixed into a text column: keep them (.str: NaN)
                stripped = stripped.where(values.map(lambda v: isinstance(v, str)), values)
            frame[col] = stripped.where(stripped != "", None)
    return frame.dropna(how="all")


def _is_row_index(col: pd.Series) -> bool:
    values = pd.to_numeric(col, errors="coerce")
    return bool(values.notna().all() and (values.to_numpy() == range(len(values))).all())


def _from_frame(frame: pd.DataFrame) -> Table:
    if frame.shape[1] == 0:
        raise DataError("the DataFrame has no columns")
    if frame.shape[0] == 0:
        raise DataError("the DataFrame has no rows")
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    digest = hashlib.sha256(hashed + "|".join(map(str, frame.columns)).encode()).hexdigest()
    return Table(frame=_clean_columns(frame, "DataFrame"), source="<DataFrame>", sha256=digest)
